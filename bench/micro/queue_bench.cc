// bench/micro/queue_bench.cc — Queue<std::string> put/get by message size (Google Benchmark).
//
//   QueuePutGetOneProcess/<bytes>: a put then a get in one process: the cost of the two calls
//     (serialization, the ring, the lock) with nobody to wake.
//   QueuePutGetIntoOneProcess/<bytes>: the same, getting into one reused string.
//   QueueCrossProcess/<bytes>: a forked producer streams items into a Queue(maxsize 1000) and
//     this process gets them: the throughput the queue_* rows of bench/compare measure.
#include <cstdint>
#include <string>

#include <benchmark/benchmark.h>

#include "mproc/process.h"
#include "mproc/queue.h"

namespace {

void QueuePutGetOneProcess(benchmark::State& state) {
  const std::string payload(static_cast<std::size_t>(state.range(0)), 'x');
  mproc::Queue<std::string> q(1000);
  for (auto _ : state) {
    q.put(payload);
    benchmark::DoNotOptimize(q.get());
  }
  state.SetBytesProcessed(state.iterations() * state.range(0));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(QueuePutGetOneProcess)->Arg(64)->Arg(4096)->Arg(64 << 10)->Arg(1 << 20);

// The same with get_into one string: what the allocation of a fresh item costs get().
void QueuePutGetIntoOneProcess(benchmark::State& state) {
  const std::string payload(static_cast<std::size_t>(state.range(0)), 'x');
  mproc::Queue<std::string> q(1000);
  std::string item;
  for (auto _ : state) {
    q.put(payload);
    q.get_into(item);
    benchmark::DoNotOptimize(item.data());
  }
  state.SetBytesProcessed(state.iterations() * state.range(0));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(QueuePutGetIntoOneProcess)->Arg(64)->Arg(4096)->Arg(64 << 10)->Arg(1 << 20);

void QueueCrossProcess(benchmark::State& state) {
  const auto size = static_cast<std::size_t>(state.range(0));
  const auto count = static_cast<std::int64_t>(state.max_iterations);
  mproc::Queue<std::string> q(1000);
  mproc::Process producer([q, size, count]() mutable {
    const std::string payload(size, 'x');
    for (std::int64_t i = 0; i < count; ++i) q.put(payload);
  });
  producer.start();
  for (auto _ : state) benchmark::DoNotOptimize(q.get());
  producer.join();
  state.SetBytesProcessed(state.iterations() * state.range(0));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(QueueCrossProcess)->Arg(64)->Arg(4096)->Arg(64 << 10)->Arg(1 << 20)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
