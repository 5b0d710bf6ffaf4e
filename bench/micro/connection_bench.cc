// bench/micro/connection_bench.cc — Pipe/Connection round trips and one-way streams (Google
// Benchmark).
//
//   PipeRoundTrip: send an int64 through a Pipe, a forked child sends it back (the
//     pipe_roundtrip_latency row of bench/compare).
//   PipeSendBytes/<bytes>: a forked child streams messages of that size, this process
//     recv_bytes() them.
#include <cstdint>
#include <string>

#include <benchmark/benchmark.h>

#include "mproc/connection.h"
#include "mproc/process.h"

namespace {

void PipeRoundTrip(benchmark::State& state) {
  const auto count = static_cast<std::int64_t>(state.max_iterations);
  auto pipe = mproc::Pipe();
  mproc::Connection& here = pipe.first;
  mproc::Connection& there = pipe.second;
  // The child runs in a forked copy of this frame: the reference is its own end.
  mproc::Process echo([&there, count] {
    for (std::int64_t i = 0; i < count; ++i) there.send(there.recv<std::int64_t>());
  });
  echo.start();
  std::int64_t i = 0;
  for (auto _ : state) {
    here.send(i);
    benchmark::DoNotOptimize(here.recv<std::int64_t>());
    ++i;
  }
  echo.join();
}
BENCHMARK(PipeRoundTrip)->UseRealTime();

void PipeSendBytes(benchmark::State& state) {
  const auto size = static_cast<std::size_t>(state.range(0));
  const auto count = static_cast<std::int64_t>(state.max_iterations);
  auto pipe = mproc::Pipe(false);  // (receive end, send end)
  mproc::Connection& reader = pipe.first;
  mproc::Connection& writer = pipe.second;
  mproc::Process producer([&writer, size, count] {
    const std::string payload(size, 'x');
    for (std::int64_t i = 0; i < count; ++i) writer.send_bytes(payload);
  });
  producer.start();
  for (auto _ : state) benchmark::DoNotOptimize(reader.recv_bytes());
  producer.join();
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(PipeSendBytes)->Arg(64)->Arg(4096)->Arg(1 << 20)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
