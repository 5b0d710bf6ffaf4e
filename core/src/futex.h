// Process-shared futex waits on a 32-bit word in shared memory: the one blocking mechanism under
// mproc's own primitives (Event, Semaphore, queues). Wake-ups are exact; nothing polls.
#pragma once

#include <atomic>
#include <cstdint>

#include "mproc/deadline.h"

namespace mproc::detail {

using FutexWord = std::atomic<std::uint32_t>;
static_assert(sizeof(FutexWord) == 4 && FutexWord::is_always_lock_free);

// Sleeps while `word == expected`, until woken or `deadline`. Returns false only when the deadline
// passed; true on a wake-up, a changed value or a spurious return (callers re-check their
// condition in a loop). Signals do not end the wait early (EINTR is retried).
bool futex_wait(const FutexWord& word, std::uint32_t expected, const Deadline& deadline);

// Wakes up to `count` sleepers on `word` (INT_MAX: all). Returns how many were woken.
int futex_wake(const FutexWord& word, int count) noexcept;

// Spins briefly (a few microseconds, with a pause instruction) while `done()` is false; returns
// done()'s last value. For the fast path where the peer is awake and about to act.
template <class Done>
bool spin_until(Done&& done, int iterations = 200) {
  for (int i = 0; i < iterations; ++i) {
    if (done()) return true;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  }
  return done();
}

}  // namespace mproc::detail
