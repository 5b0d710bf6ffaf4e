// A process-shared, robust mutex for structures in shared memory (PTHREAD_MUTEX_ROBUST): when its
// holder dies, the kernel hands it to the next acquirer with EOWNERDEAD instead of freezing
// everyone. Boost.Interprocess mutexes are not robust; this is what every shared structure of
// mproc (locks, queues, values) guards itself with.
//
// Placement: construct it in place inside a shared segment, once, by the creator; every process
// that maps the segment then uses the same object. Never copy or move it.
#pragma once

#include <pthread.h>

#include "mproc/deadline.h"

namespace mproc::detail {

enum class LockResult {
  kTimedOut,   // the deadline passed
  kAcquired,   // held, normally
  kOwnerDied,  // held, but the previous holder died holding it; the protected data may be
               // half-updated, and the caller must repair or reset it before unlocking
};

class RobustMutex {
 public:
  // `recursive`: the same thread may lock again (RLock).
  explicit RobustMutex(bool recursive = false);
  ~RobustMutex();
  RobustMutex(const RobustMutex&) = delete;
  RobustMutex& operator=(const RobustMutex&) = delete;

  // Blocks until held or the deadline passes. The mutex is always made consistent again, so a
  // kOwnerDied acquisition is a normal one from then on.
  LockResult lock(const Deadline& deadline = Deadline::never());
  // Non-blocking.
  LockResult try_lock();
  // Whether nobody seems to hold it, by a plain read (no write, so no cache-line transfer while
  // it is held elsewhere): spinners test this before each try_lock. A hint only. glibc's lock
  // word holds the owner's thread id, 0 when free.
  [[nodiscard]] bool looks_free() const noexcept {
    return __atomic_load_n(&mutex_.__data.__lock, __ATOMIC_RELAXED) == 0;
  }
  // Throws ValueError when the calling thread does not hold it.
  void unlock();

 private:
  pthread_mutex_t mutex_;
};

// RAII holder for a RobustMutex; `owner_died()` tells whether the data needs repair.
class RobustLockGuard {
 public:
  explicit RobustLockGuard(RobustMutex& mutex) : mutex_(mutex), result_(mutex.lock()) {}
  ~RobustLockGuard() {
    if (result_ != LockResult::kTimedOut) mutex_.unlock();
  }
  RobustLockGuard(const RobustLockGuard&) = delete;
  RobustLockGuard& operator=(const RobustLockGuard&) = delete;
  [[nodiscard]] bool owner_died() const noexcept { return result_ == LockResult::kOwnerDied; }

 private:
  RobustMutex& mutex_;
  LockResult result_;
};

}  // namespace mproc::detail
