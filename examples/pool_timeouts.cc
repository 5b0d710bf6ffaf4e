// Pool timeouts: a map where a few inputs never finish. Python's multiprocessing.Pool cannot stop
// such a task without killing the whole pool (the Pebble library exists for that):
//
//   from pebble import ProcessPool
//   with ProcessPool() as pool:
//       results = pool.map(collatz_steps, range(1, 13), timeout=0.5).result()
//       for n in range(1, 13):
//           try: print(f"collatz_steps({n}) = {next(results)}")
//           except TimeoutError: print(f"collatz_steps({n}) timed out")
//
// With mproc each task gets its own limit ({.task_timeout}): a task that runs longer is stopped
// by killing its worker, its result is a TimeoutError, the worker is replaced, and every other
// input completes.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <vector>

#include "mproc/mproc.h"

namespace mp = mproc;
using namespace std::chrono_literals;

// Steps of the Collatz sequence from n down to 1; a "bug" makes it loop for ever when n is a
// multiple of 5 (the runaway inputs).
int collatz_steps(int n) {
  volatile bool runaway = n % 5 == 0;
  while (runaway) {
  }
  int steps = 0;
  for (std::uint64_t v = static_cast<std::uint64_t>(n); v != 1; ++steps)
    v = v % 2 == 0 ? v / 2 : 3 * v + 1;
  return steps;
}
MPROC_TASK(collatz_steps);

int main(int argc, char** argv) {
  mp::init(argc, argv);
  mp::Pool pool(2);
  std::vector<int> inputs;
  for (int n = 1; n <= 12; ++n) inputs.push_back(n);

  int completed = 0;
  int timed_out = 0;
  // Each input is its own task; the limit counts from when a worker takes it.
  auto results = pool.imap(collatz_steps, inputs, {.task_timeout = 500ms});
  for (int n : inputs) {
    try {
      std::optional<int> steps = results.next();
      std::printf("collatz_steps(%d) = %d\n", n, steps.value());
      ++completed;
    } catch (const mp::TimeoutError&) {
      std::printf("collatz_steps(%d) timed out after 500 ms\n", n);
      ++timed_out;
    }
  }
  // The runaway workers were replaced: the pool goes on.
  std::printf("%zu inputs: %d completed, %d timed out; the pool goes on: collatz_steps(27) = %d\n",
              inputs.size(), completed, timed_out, pool.apply(collatz_steps, 27));
  pool.close();
  pool.join();
  return 0;
}
