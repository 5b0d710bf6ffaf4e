// Quickstart: parallelize a CPU-bound job with mproc::Pool, the way Python's
//
//   from multiprocessing import Pool
//   with Pool() as pool:
//       counts = pool.map(count_primes, ranges)
//       r = pool.apply_async(count_primes, (ranges[0],)); r.get()
//
// does it, and print how long the serial and the parallel runs took.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <numeric>
#include <utility>
#include <vector>

#include "mproc/mproc.h"

namespace mp = mproc;

// Primes in [range.first, range.second), by trial division: honest CPU work.
std::uint64_t count_primes(std::pair<std::uint64_t, std::uint64_t> range) {
  std::uint64_t count = 0;
  for (std::uint64_t n = std::max<std::uint64_t>(range.first, 2); n < range.second; ++n) {
    bool prime = true;
    for (std::uint64_t d = 2; d * d <= n; ++d) {
      if (n % d == 0) {
        prime = false;
        break;
      }
    }
    count += prime;
  }
  return count;
}
MPROC_TASK(count_primes);

int main() {
  constexpr std::uint64_t kLimit = 2'000'000;
  constexpr std::uint64_t kPieces = 64;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;
  for (std::uint64_t i = 0; i < kPieces; ++i)
    ranges.emplace_back(kLimit * i / kPieces, kLimit * (i + 1) / kPieces);

  using Clock = std::chrono::steady_clock;
  auto seconds_since = [](Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
  };

  auto start = Clock::now();
  std::uint64_t serial = 0;
  for (const auto& range : ranges) serial += count_primes(range);
  double serial_time = seconds_since(start);

  mp::Pool pool;  // cpu_count() workers
  start = Clock::now();
  std::vector<std::uint64_t> counts = pool.map(count_primes, ranges);
  double parallel_time = seconds_since(start);
  std::uint64_t parallel = std::accumulate(counts.begin(), counts.end(), std::uint64_t{0});

  mp::AsyncResult<std::uint64_t> first = pool.apply_async(count_primes, ranges.front());

  std::printf("primes below %llu: %llu (serial), %llu (pool.map)\n",
              static_cast<unsigned long long>(kLimit), static_cast<unsigned long long>(serial),
              static_cast<unsigned long long>(parallel));
  std::printf("primes below %llu (apply_async): %llu\n",
              static_cast<unsigned long long>(ranges.front().second),
              static_cast<unsigned long long>(first.get()));
  std::printf("serial %.3f s, parallel %.3f s on %d workers: %.2fx\n", serial_time, parallel_time,
              pool.processes(), serial_time / parallel_time);
  pool.close();
  pool.join();
  return serial == parallel ? 0 : 1;
}
