// bench/micro/pool_bench.cc — Pool operations (Google Benchmark), cpu_count() workers.
//
//   PoolApplyAsyncRoundTrip: one apply_async(square, i).get() (apply_async_roundtrip_latency).
//   PoolApplyAsyncBatch/<n>: submit n apply_async calls, then get them all.
//   PoolMap/<n>: map(square, 0..n) with the default chunksize.
//   PoolMapChunksize1/<n>: the same with chunksize 1.
//   PoolImap/<n>: imap(square, 0..n) consumed in order.
//   PoolStartStop: Pool(), close(), join().
#include <cstdint>
#include <ranges>
#include <vector>

#include <benchmark/benchmark.h>

#include "mproc/pool.h"
#include "mproc/task.h"

namespace {

std::int64_t square(std::int64_t x) { return x * x; }

}  // namespace

MPROC_TASK(square);

namespace {

void PoolApplyAsyncRoundTrip(benchmark::State& state) {
  mproc::Pool pool;
  std::int64_t i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(pool.apply_async(square, i++).get());
  pool.close();
  pool.join();
}
BENCHMARK(PoolApplyAsyncRoundTrip)->UseRealTime();

void PoolApplyAsyncBatch(benchmark::State& state) {
  mproc::Pool pool;
  const std::int64_t n = state.range(0);
  std::vector<mproc::AsyncResult<std::int64_t>> results;
  for (auto _ : state) {
    results.clear();
    for (std::int64_t i = 0; i < n; ++i) results.push_back(pool.apply_async(square, i));
    for (auto& r : results) benchmark::DoNotOptimize(r.get());
  }
  pool.close();
  pool.join();
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(PoolApplyAsyncBatch)->Arg(1000)->UseRealTime();

void PoolMap(benchmark::State& state) {
  mproc::Pool pool;
  const std::int64_t n = state.range(0);
  for (auto _ : state)
    benchmark::DoNotOptimize(pool.map(square, std::views::iota(std::int64_t{0}, n)));
  pool.close();
  pool.join();
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(PoolMap)->Arg(10'000)->Arg(100'000)->UseRealTime();

void PoolMapChunksize1(benchmark::State& state) {
  mproc::Pool pool;
  const std::int64_t n = state.range(0);
  for (auto _ : state)
    benchmark::DoNotOptimize(
        pool.map(square, std::views::iota(std::int64_t{0}, n), {.chunksize = 1}));
  pool.close();
  pool.join();
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(PoolMapChunksize1)->Arg(10'000)->UseRealTime();

void PoolImap(benchmark::State& state) {
  mproc::Pool pool;
  const std::int64_t n = state.range(0);
  for (auto _ : state) {
    std::int64_t sum = 0;
    for (std::int64_t v : pool.imap(square, std::views::iota(std::int64_t{0}, n))) sum += v;
    benchmark::DoNotOptimize(sum);
  }
  pool.close();
  pool.join();
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(PoolImap)->Arg(10'000)->UseRealTime();

void PoolStartStop(benchmark::State& state) {
  for (auto _ : state) {
    mproc::Pool pool;
    pool.close();
    pool.join();
  }
}
BENCHMARK(PoolStartStop)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
