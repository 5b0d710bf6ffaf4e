// Small helpers shared by the sync_*_test.cc files: counters in shared memory and a bounded wait
// for a condition to become true (tests may poll; the library never does).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <new>
#include <thread>

#include "mproc/shm.h"

namespace mproc::test {

// `n` atomic ints in a fresh segment, visible to forked children.
class SharedInts {
 public:
  explicit SharedInts(int n = 1) : segment_(SharedSegment::create(sizeof(std::atomic<int>) * n)) {
    for (int i = 0; i < n; ++i) new (&at(i)) std::atomic<int>(0);
  }
  std::atomic<int>& at(int i) const { return static_cast<std::atomic<int>*>(segment_.data())[i]; }
  std::atomic<int>& operator*() const { return at(0); }
  std::atomic<int>* operator->() const { return &at(0); }

 private:
  SharedSegment segment_;
};

// Polls `pred` until it is true or `timeout` passes; returns its last value.
inline bool eventually(const std::function<bool()>& pred,
                       std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  auto end = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= end) return pred();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// For checks that something stays false for a while (no wake-up that should not happen).
inline void settle(std::chrono::milliseconds how_long = std::chrono::milliseconds(200)) {
  std::this_thread::sleep_for(how_long);
}

}  // namespace mproc::test
