// bench/micro/sync_bench.cc — Lock, Value and Event (Google Benchmark).
//
//   LockAcquireRelease: an uncontended acquire + release of a process-shared Lock.
//   ValueLockedIncrement: `with v.get_lock(): v.value += 1` (the value_locked_increment row).
//   ValueLockedIncrementContended: the same in this process and in a forked child at once, on
//     one Value: the lock handed between two processes (items: both processes' increments).
//   EventWakeRoundTrip: two Events ping-ponged with a forked child: set, the other side's wait
//     returns, it clears and sets the other Event: a cross-process wake-up round trip.
#include <cstdint>
#include <mutex>

#include <benchmark/benchmark.h>

#include "mproc/event.h"
#include "mproc/lock.h"
#include "mproc/process.h"
#include "mproc/sharedctypes.h"

namespace {

void LockAcquireRelease(benchmark::State& state) {
  mproc::Lock lock;
  for (auto _ : state) {
    lock.acquire();
    lock.release();
  }
}
BENCHMARK(LockAcquireRelease);

void ValueLockedIncrement(benchmark::State& state) {
  mproc::Value<int> v(0);
  for (auto _ : state) {
    std::lock_guard hold(v.get_lock());
    *v += 1;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(ValueLockedIncrement);

void ValueLockedIncrementContended(benchmark::State& state) {
  const auto count = static_cast<std::int64_t>(state.max_iterations);
  mproc::Value<std::int64_t> v(0);
  mproc::Process peer([v, count]() mutable {
    for (std::int64_t i = 0; i < count; ++i) {
      std::lock_guard hold(v.get_lock());
      *v += 1;
    }
  });
  peer.start();
  for (auto _ : state) {
    std::lock_guard hold(v.get_lock());
    *v += 1;
  }
  peer.join();
  if (*v != 2 * count) state.SkipWithError("increments were lost");
  state.SetItemsProcessed(2 * count);
}
BENCHMARK(ValueLockedIncrementContended)->UseRealTime();

void EventWakeRoundTrip(benchmark::State& state) {
  const auto count = static_cast<std::int64_t>(state.max_iterations);
  mproc::Event ping;
  mproc::Event pong;
  mproc::Process peer([ping, pong, count]() mutable {
    for (std::int64_t i = 0; i < count; ++i) {
      ping.wait();
      ping.clear();
      pong.set();
    }
  });
  peer.start();
  for (auto _ : state) {
    ping.set();
    pong.wait();
    pong.clear();
  }
  peer.join();
}
BENCHMARK(EventWakeRoundTrip)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
