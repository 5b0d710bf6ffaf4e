#include "futex.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <ctime>

#include "os_error.h"

namespace mproc::detail {
namespace {

long futex(const FutexWord& word, int op, std::uint32_t value, const timespec* timeout,
           std::uint32_t bitset) {
  // Shared (not FUTEX_PRIVATE_FLAG): the word may be mapped in several processes.
  return ::syscall(SYS_futex, reinterpret_cast<const std::uint32_t*>(&word), op, value, timeout,
                   nullptr, bitset);
}

}  // namespace

bool futex_wait(const FutexWord& word, std::uint32_t expected, const Deadline& deadline) {
  timespec abs{};
  const timespec* timeout = nullptr;
  if (!deadline.is_never()) {
    auto since_epoch = deadline.when().time_since_epoch();
    auto secs = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
    abs.tv_sec = static_cast<time_t>(secs.count());
    abs.tv_nsec = static_cast<long>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(since_epoch - secs).count());
    timeout = &abs;
  }
  for (;;) {
    // FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC time (steady_clock on Linux).
    long rc = futex(word, FUTEX_WAIT_BITSET, expected, timeout, FUTEX_BITSET_MATCH_ANY);
    if (rc == 0) return true;
    switch (errno) {
      case EAGAIN:  // the value had already changed
        return true;
      case EINTR:
        if (word.load(std::memory_order_acquire) != expected) return true;
        continue;
      case ETIMEDOUT:
        return false;
      default:
        throw_errno("wait on a futex");
    }
  }
}

int futex_wake(const FutexWord& word, int count) noexcept {
  long rc = futex(word, FUTEX_WAKE, static_cast<std::uint32_t>(count), nullptr, 0);
  return rc < 0 ? 0 : static_cast<int>(rc);
}

}  // namespace mproc::detail
