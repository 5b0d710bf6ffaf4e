// A process-shared mutex for shared memory whose lock word names its holder: the holder's pid
// and a moment when it ran, taken together by one compare-and-swap. A waiter that has slept a
// few milliseconds checks whether that process still runs (/proc/<pid>/stat: gone, a zombie, or
// a process started after that moment under a reused pid all count as dead) and, if not, takes
// the mutex over (kOwnerDied).
//
// Why not RobustMutex (glibc's PTHREAD_MUTEX_ROBUST): the kernel finds a dead holder at once
// through each thread's robust list, but keeping that list costs glibc's robust path about 270
// instructions a lock and unlock, and the queues take their mutex twice per item. Here an
// uncontended lock is one compare-and-swap and an unlock one exchange. The price: a dead holder
// is found within kOwnerCheckInterval rather than at once, and holders are told apart by
// process, not thread (a thread that ends holding the mutex is not noticed; mproc's critical
// sections cannot end a thread). Every process using one must see the others' pids: one pid
// namespace, as for every primitive that signals processes.
//
// Placement as RobustMutex: construct in place in a shared segment, once; never copy or move.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "mproc/deadline.h"

#include "robust_mutex.h"  // LockResult

namespace mproc::detail {

class PidMutex {
 public:
  // How long a waiter sleeps before it checks on the holder.
  static constexpr std::chrono::milliseconds kOwnerCheckInterval{5};

  PidMutex() = default;
  PidMutex(const PidMutex&) = delete;
  PidMutex& operator=(const PidMutex&) = delete;

  // Blocks until held or the deadline passes (kTimedOut); kOwnerDied when taken over from a
  // holder that died (the protected data may be half-updated). A deadline already past still
  // finds a dead holder.
  LockResult lock(const Deadline& deadline = Deadline::never());
  // Non-blocking: kTimedOut when held elsewhere (a dead holder is only found by lock()).
  LockResult try_lock() noexcept;
  // Whether nobody seems to hold it, by a plain read (spinners test this before try_lock). A
  // hint only.
  [[nodiscard]] bool looks_free() const noexcept {
    return word_.load(std::memory_order_relaxed) == 0;
  }
  // Throws ValueError when this process does not hold it.
  void unlock();
  // For a caller that holds it by construction (an RAII owner): nothing to check or throw.
  void unlock_held() noexcept;

 private:
  // 0 when free; else the holder's tag (high half: ticks since boot at a moment it ran) and pid
  // (low half, with kWaiters set once a waiter may sleep). The futex is the low half.
  std::atomic<std::uint64_t> word_{0};
};

}  // namespace mproc::detail
