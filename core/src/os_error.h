// The one place where errno becomes an exception, and where the EINTR policy is written down.
#pragma once

#include <cerrno>
#include <string_view>

namespace mproc::detail {

// Throws std::system_error(errno, "cannot <what>"). Never returns.
[[noreturn]] void throw_errno(std::string_view what);
[[noreturn]] void throw_errno(int error, std::string_view what);

// Calls `fn` until it does not fail with EINTR. A signal handler that interrupts a system call
// of ours does not turn into an error: we simply try again (deadlines are absolute, so a timed
// call resumed this way still ends on time).
template <class Fn>
auto retry_on_eintr(Fn&& fn) {
  for (;;) {
    auto result = fn();
    if (!(result == -1 && errno == EINTR)) return result;
  }
}

// Reports a failure that a destructor or other noexcept path cannot throw (through the mproc
// logger, at error level).
void report_error(std::string_view what) noexcept;

}  // namespace mproc::detail
