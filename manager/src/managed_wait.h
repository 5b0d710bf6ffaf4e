// Timeouts of the managed sync objects and queue: Python's (blocking, timeout) rules turned into
// a Deadline, and a condition-variable wait until one.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>

#include "mproc/deadline.h"
#include "mproc/errors.h"

namespace mproc::managed::wait_detail {

// Longer than this is for ever: a year still fits any clock, 1e300 seconds would overflow it.
inline constexpr double kForeverSeconds = 365.0 * 24 * 3600;

// A wait of `timeout` seconds (nullopt: for ever; negative: none), as Event.wait's.
inline Deadline wait_deadline(std::optional<double> timeout) {
  if (!timeout || *timeout > kForeverSeconds) return Deadline::never();
  return Deadline::after(timeout);
}

// threading's acquire(blocking, timeout): a timeout with blocking=false is a ValueError, as is a
// negative one for Lock and RLock (`negative_is_error`); Semaphore's just tries once.
inline Deadline acquire_deadline(bool blocking, std::optional<double> timeout,
                                 bool negative_is_error) {
  if (!blocking) {
    if (timeout) throw ValueError("can't specify a timeout for a non-blocking call");
    return Deadline::now();
  }
  if (negative_is_error && timeout && *timeout < 0)
    throw ValueError("timeout value must be a non-negative number");
  return wait_deadline(timeout);
}

// queue.Queue's put/get(block, timeout): block=false ignores the timeout; a negative one is a
// ValueError.
inline Deadline queue_deadline(bool block, std::optional<double> timeout) {
  if (!block) return Deadline::now();
  if (timeout && *timeout < 0) throw ValueError("'timeout' must be a non-negative number");
  return wait_deadline(timeout);
}

// Waits on `cv` until `ready()` or the deadline; returns ready().
template <class Ready>
bool wait_until(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                const Deadline& deadline, Ready ready) {
  if (deadline.is_never()) {
    cv.wait(lock, ready);
    return true;
  }
  return cv.wait_until(lock, deadline.when(), ready);
}

}  // namespace mproc::managed::wait_detail
