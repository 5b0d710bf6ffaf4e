#include "pid_mutex.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <ctime>
#include <string_view>

#include "mproc/errors.h"

#include "futex.h"

namespace mproc::detail {
namespace {

static_assert(std::endian::native == std::endian::little,
              "the futex is the low half of the lock word");

constexpr std::uint64_t kWaiters = std::uint64_t{1} << 31;
constexpr std::uint64_t kPidMask = kWaiters - 1;

// No function-local statics on the locking path: a thread that initialises one while another
// thread forks leaves the child a guard marked "in progress" by a thread it does not have, and
// the child's first lock then waits on it forever (seen: a pool forked while another pool's
// collector took its first lock). What they held is set up when the library loads, while the
// process has one thread.
const std::uint64_t kTicksPerSecond = static_cast<std::uint64_t>(::sysconf(_SC_CLK_TCK));

// Clock ticks since boot (the unit of /proc's start times), truncated to 32 bits (they wrap
// after 497 days at 100 Hz: compared by their difference).
std::uint32_t ticks_since_boot(std::uint64_t seconds, std::uint64_t nanoseconds) noexcept {
  return static_cast<std::uint32_t>(seconds * kTicksPerSecond +
                                    nanoseconds * kTicksPerSecond / 1'000'000'000);
}

// What /proc/<pid>/stat says of a process.
struct ProcessFacts {
  bool running = false;  // exists and is not a zombie
  bool start_known = false;
  std::uint32_t started = 0;  // ticks_since_boot at its start (fork)
};

// Fields after the command name (which may hold spaces and parentheses, hence the last ')'):
// state is the 3rd field of the line, starttime the 22nd.
ProcessFacts read_stat(pid_t pid) {
  char path[32];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    // No such process, or no /proc to ask: then the pid is all there is to check (and a zombie
    // counts as running until reaped).
    return {.running = ::kill(pid, 0) == 0 || errno == EPERM};
  }
  char buffer[1024];
  ssize_t n;
  do {
    n = ::read(fd, buffer, sizeof buffer - 1);
  } while (n < 0 && errno == EINTR);
  ::close(fd);
  if (n <= 0) return {};
  const std::string_view line(buffer, static_cast<std::size_t>(n));
  const auto close_paren = line.rfind(')');
  if (close_paren == std::string_view::npos || close_paren + 2 >= line.size()) return {};
  std::string_view rest = line.substr(close_paren + 2);  // "<state> <ppid> ..."
  const char state = rest[0];
  if (state == 'Z' || state == 'X') return {};
  for (int field = 3; field < 22; ++field) {
    const auto space = rest.find(' ');
    if (space == std::string_view::npos) return {.running = true};
    rest.remove_prefix(space + 1);
  }
  std::uint64_t starttime = 0;
  if (std::from_chars(rest.data(), rest.data() + rest.size(), starttime).ec != std::errc())
    return {.running = true};
  return {.running = true, .start_known = true, .started = static_cast<std::uint32_t>(starttime)};
}

// This process's lock word: its pid, and as the tag a moment when it certainly ran (now, in
// ticks since boot). Computed once per process, from the vDSO's clock and no file (a fork's
// child computes its own at its first lock): the pid's process at a later check is the same
// one exactly if it started no later than that moment, since a pid names one process at a time.
std::atomic<std::uint64_t> self_word{0};

void forget_self_in_child() { self_word.store(0, std::memory_order_relaxed); }
const int forget_self_registered = ::pthread_atfork(nullptr, nullptr, &forget_self_in_child);

std::uint64_t self() noexcept {
  std::uint64_t word = self_word.load(std::memory_order_relaxed);
  if (word != 0) [[likely]]
    return word;
  timespec now{};
  ::clock_gettime(CLOCK_BOOTTIME, &now);
  std::uint32_t tag = ticks_since_boot(static_cast<std::uint64_t>(now.tv_sec),
                                       static_cast<std::uint64_t>(now.tv_nsec));
  if (tag == 0) tag = 1;  // 0: no tag
  word = (std::uint64_t{tag} << 32) | static_cast<std::uint32_t>(::getpid());
  self_word.store(word, std::memory_order_relaxed);
  return word;
}

// Whether the holder named by `word` is gone: it no longer runs, or its pid now belongs to a
// process that started after the holder's tag.
bool holder_is_dead(std::uint64_t word) {
  const auto pid = static_cast<pid_t>(word & kPidMask);
  const auto tag = static_cast<std::uint32_t>(word >> 32);
  const ProcessFacts facts = read_stat(pid);
  if (!facts.running) return true;
  return tag != 0 && facts.start_known && static_cast<std::int32_t>(facts.started - tag) > 0;
}

FutexWord& futex_of(std::atomic<std::uint64_t>& word) noexcept {
  return *reinterpret_cast<FutexWord*>(&word);
}

}  // namespace

LockResult PidMutex::try_lock() noexcept {
  std::uint64_t expected = 0;
  return word_.compare_exchange_strong(expected, self(), std::memory_order_acquire,
                                       std::memory_order_relaxed)
             ? LockResult::kAcquired
             : LockResult::kTimedOut;
}

LockResult PidMutex::lock(const Deadline& deadline) {
  const std::uint64_t me = self();
  std::uint64_t seen = 0;
  if (word_.compare_exchange_strong(seen, me, std::memory_order_acquire, std::memory_order_relaxed))
    return LockResult::kAcquired;
  // Drepper's three-state mutex ("Futexes Are Tricky"): once a waiter may sleep, the word
  // carries kWaiters, and a waiter that gets the mutex after sleeping takes it with the bit set,
  // since others may still sleep; the unlock that finds the bit wakes one. A waiter that never
  // slept takes it without the bit: any sleeper set the bit itself, and the one an unlock woke
  // sets it again if it finds the mutex taken, so the unlock that would wake nobody makes no
  // system call.
  std::uint64_t taken = me;
  for (;;) {
    if (seen == 0) {
      if (word_.compare_exchange_strong(seen, taken, std::memory_order_acquire,
                                        std::memory_order_relaxed))
        return LockResult::kAcquired;
      continue;
    }
    if ((seen & kWaiters) == 0) {
      if (!word_.compare_exchange_strong(seen, seen | kWaiters, std::memory_order_relaxed))
        continue;
      seen |= kWaiters;
    }
    // A holder that dies is noticed only here, after a sleep that timed out; and a waiter woken
    // by an unlock but killed before it took the mutex leaves the others asleep until theirs.
    const auto check_at = Clock::now() + kOwnerCheckInterval;
    const bool woken = futex_wait(futex_of(word_), static_cast<std::uint32_t>(seen),
                                  Deadline::at(std::min(deadline.when(), check_at)));
    taken = me | kWaiters;
    if (!woken) {
      // The holder is checked even when the caller's deadline has passed: a lock that may not
      // wait still takes a dead holder's mutex over (a queue's get_nowait past a record whose
      // producer died).
      std::uint64_t now = word_.load(std::memory_order_relaxed);
      if (now != 0 && (now & ~kWaiters) == (seen & ~kWaiters) && holder_is_dead(now) &&
          word_.compare_exchange_strong(now, me | kWaiters, std::memory_order_acquire,
                                        std::memory_order_relaxed))
        return LockResult::kOwnerDied;
      if (deadline.expired()) return LockResult::kTimedOut;
    }
    seen = word_.load(std::memory_order_relaxed);
  }
}

void PidMutex::unlock() {
  const std::uint64_t held = word_.load(std::memory_order_relaxed);
  if (held == 0 || (held & ~kWaiters) != self())
    throw ValueError("cannot release a lock held by another process");
  unlock_held();
}

void PidMutex::unlock_held() noexcept {
  if (word_.exchange(0, std::memory_order_release) & kWaiters) futex_wake(futex_of(word_), 1);
}

}  // namespace mproc::detail
