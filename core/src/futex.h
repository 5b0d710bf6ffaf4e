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

// Tells the core that this is a spin loop (on x86: frees the pipeline for a sibling hyperthread,
// and spares the pipeline flush when the awaited write arrives).
inline void cpu_pause() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// Spins briefly (a few microseconds, with a pause instruction) while `done()` is false; returns
// done()'s last value. For the fast path where the peer is awake and about to act.
template <class Done>
bool spin_until(Done&& done, int iterations = 200) {
  for (int i = 0; i < iterations; ++i) {
    if (done()) return true;
    cpu_pause();
  }
  return done();
}

// As spin_until, but looking less and less often: 1, 2, 4 ... up to `max_gap` pauses between
// looks, `budget` pauses in all. For a word that another core writes on every operation, as a
// lock's: each look takes its cache line away from that core, and a holder that finds the lock
// still free after its release takes it again for its next operation, so that two processes
// each do several operations in a row instead of handing the lock over after every one.
template <class Done>
bool spin_until_backing_off(Done&& done, int max_gap, int budget) {
  for (int gap = 1; budget > 0;) {
    if (done()) return true;
    for (int i = 0; i < gap; ++i) cpu_pause();
    budget -= gap;
    if (gap < max_gap) gap *= 2;
  }
  return done();
}

// The spin of a process-shared lock before its futex sleep, `try_take` being a test and a
// try-lock: critical sections are short, so a contended lock is usually free again within a
// microsecond, much sooner than a futex round trip. Up to 64 pauses between looks, 800 in all
// (about 16 us at the ~20 ns a pause takes on current x86): a look at every pause kept two
// processes on two CPUs in step, handing the lock and the lines it guards over every time.
// Measured on two CPUs: a Value incremented under its lock by two processes at once
// (micro_sync_bench's ValueLockedIncrementContended) 9.7 M increments/s before, 16 M with the
// backoff; queue_64B_msgs 2.2 M items/s before, 4.5 M (medians of 8 alternated runs). A gap of
// 128 gained little more there and cost the pool's apply_async_throughput about 9%.
template <class TryTake>
bool spin_to_lock(TryTake&& try_take) {
  return spin_until_backing_off(try_take, 64, 800);
}

}  // namespace mproc::detail
