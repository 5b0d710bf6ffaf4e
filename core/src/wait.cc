#include "mproc/wait.h"

#include <poll.h>

#include <cerrno>
#include <ctime>
#include <string>

#include "mproc/errors.h"

#include "os_error.h"
#include "process_state.h"

namespace mproc {
namespace {

// ppoll's timeout for what is left of `deadline` (nullptr: for ever).
const timespec* remaining_timespec(const Deadline& deadline, timespec& storage) {
  if (deadline.is_never()) return nullptr;
  auto left = deadline.remaining().count();
  storage.tv_sec = static_cast<time_t>(left / 1'000'000'000);
  storage.tv_nsec = static_cast<long>(left % 1'000'000'000);
  return &storage;
}

// The one poll loop of the process layer: ppoll with the time left, EINTR retried.
int poll_until(std::vector<pollfd>& fds, const Deadline& deadline) {
  for (;;) {
    timespec storage{};
    int n = ::ppoll(fds.data(), fds.size(), remaining_timespec(deadline, storage), nullptr);
    if (n >= 0) return n;
    if (errno != EINTR) detail::throw_errno("poll");
  }
}

}  // namespace

namespace detail {

bool wait_readable(int fd, const Deadline& deadline) {
  std::vector<pollfd> fds{{fd, POLLIN, 0}};
  return poll_until(fds, deadline) > 0;
}

}  // namespace detail

std::vector<int> wait(std::span<const int> fds, const Deadline& deadline) {
  std::vector<pollfd> polled;
  polled.reserve(fds.size());
  for (int fd : fds) {
    if (fd < 0) throw ValueError("mproc::wait: invalid file descriptor " + std::to_string(fd));
    polled.push_back({fd, POLLIN, 0});
  }
  std::vector<int> ready;
  if (poll_until(polled, deadline) == 0) return ready;
  for (const pollfd& p : polled) {
    if (p.revents & POLLNVAL) {
      detail::throw_errno(EBADF, "wait on file descriptor " + std::to_string(p.fd));
    }
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) ready.push_back(p.fd);
  }
  return ready;
}

}  // namespace mproc
