// ppoll(2) until a Deadline, shared by Connection, wait() and Listener.
#pragma once

#include <poll.h>
#include <time.h>

#include <cerrno>

#include "mproc/deadline.h"

#include "os_error.h"

namespace mproc::detail {

// Polls `fds` until one is ready or `deadline` passes; returns the number ready (0: timed out).
// A signal does not end the wait: EINTR resumes it with the time left (the deadline is absolute).
inline int poll_until(pollfd* fds, nfds_t count, const Deadline& deadline) {
  for (;;) {
    timespec ts{};
    timespec* tsp = nullptr;
    if (!deadline.is_never()) {
      auto left = deadline.remaining().count();
      ts.tv_sec = static_cast<time_t>(left / 1'000'000'000);
      ts.tv_nsec = static_cast<long>(left % 1'000'000'000);
      tsp = &ts;
    }
    int r = ::ppoll(fds, count, tsp, nullptr);
    if (r >= 0) return r;
    if (errno != EINTR) throw_errno("poll");
  }
}

}  // namespace mproc::detail
