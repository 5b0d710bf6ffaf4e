// mproc/wait.h
//
// `wait` blocks until at least one of several file descriptors is ready to read, like Python's
// `multiprocessing.connection.wait`. It works on anything pollable: process sentinels
// (`Process::sentinel()`, `ParentProcess::sentinel()`), pipes, sockets. Connection objects get
// their own overloads in connection.h.
//
//   std::vector<int> ready = mproc::wait({p1.sentinel(), p2.sentinel()}, 5s);
//
// Ready means: poll(2) reports data, end of file or an error on it (a pipe whose writers are all
// closed is ready; so is a sentinel whose process has exited). Woken by the descriptors themselves,
// never by a polling timer; signals do not end the wait (EINTR is retried with the time left).
// Returns the ready descriptors in the order given; empty if the deadline passed (a zero or
// negative timeout checks once and returns at once). Throws ValueError for a negative fd and
// std::system_error (EBADF) for one that is not open.
//
// Thread safety: may be called from several threads at once, on the same descriptors too.
#pragma once

#include <chrono>
#include <initializer_list>
#include <span>
#include <vector>

#include "mproc/deadline.h"

namespace mproc {

std::vector<int> wait(std::span<const int> fds, const Deadline& deadline = Deadline::never());
template <class Rep, class Period>
std::vector<int> wait(std::span<const int> fds, std::chrono::duration<Rep, Period> timeout) {
  return wait(fds, Deadline::after(timeout));
}

inline std::vector<int> wait(std::initializer_list<int> fds,
                             const Deadline& deadline = Deadline::never()) {
  return wait(std::span<const int>(fds.begin(), fds.size()), deadline);
}
template <class Rep, class Period>
std::vector<int> wait(std::initializer_list<int> fds, std::chrono::duration<Rep, Period> timeout) {
  return wait(fds, Deadline::after(timeout));
}

}  // namespace mproc
