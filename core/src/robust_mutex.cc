#include "robust_mutex.h"

#include <cerrno>
#include <ctime>

#include "mproc/errors.h"

#include "os_error.h"

namespace mproc::detail {
namespace {

void check(int error, const char* what) {
  if (error != 0) throw_errno(error, what);
}

LockResult settle(pthread_mutex_t& mutex, int rc) {
  switch (rc) {
    case 0:
      return LockResult::kAcquired;
    case EOWNERDEAD:
      pthread_mutex_consistent(&mutex);
      return LockResult::kOwnerDied;
    case ETIMEDOUT:
    case EBUSY:
      return LockResult::kTimedOut;
    default:
      throw_errno(rc, "lock a process-shared mutex");
  }
}

}  // namespace

RobustMutex::RobustMutex(bool recursive) {
  pthread_mutexattr_t attr;
  check(pthread_mutexattr_init(&attr), "initialise mutex attributes");
  check(pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED), "make a mutex process-shared");
  check(pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST), "make a mutex robust");
  // ERRORCHECK so that an unlock by a non-owner is reported rather than undefined.
  check(pthread_mutexattr_settype(&attr,
                                  recursive ? PTHREAD_MUTEX_RECURSIVE : PTHREAD_MUTEX_ERRORCHECK),
        "set a mutex type");
  int rc = pthread_mutex_init(&mutex_, &attr);
  pthread_mutexattr_destroy(&attr);
  check(rc, "initialise a process-shared mutex");
}

RobustMutex::~RobustMutex() { pthread_mutex_destroy(&mutex_); }

LockResult RobustMutex::lock(const Deadline& deadline) {
  if (deadline.is_never()) return settle(mutex_, pthread_mutex_lock(&mutex_));
  auto since_epoch = deadline.when().time_since_epoch();
  auto secs = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
  timespec abs{
      static_cast<time_t>(secs.count()),
      static_cast<long>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(since_epoch - secs).count())};
  // pthread_mutex_clocklock (glibc 2.30) waits on CLOCK_MONOTONIC, steady_clock's clock.
  return settle(mutex_, pthread_mutex_clocklock(&mutex_, CLOCK_MONOTONIC, &abs));
}

LockResult RobustMutex::try_lock() { return settle(mutex_, pthread_mutex_trylock(&mutex_)); }

void RobustMutex::unlock() {
  int rc = pthread_mutex_unlock(&mutex_);
  if (rc == EPERM) throw ValueError("cannot release a lock held by another thread or process");
  check(rc, "unlock a process-shared mutex");
}

}  // namespace mproc::detail
