// Seed m: creating a process with a target function and arguments. The Python it mirrors:
//
//   import time
//   import multiprocessing
//   def worker(interval):
//       n = 5
//       while n > 0:
//           print("The time is {0}".format(time.ctime()))
//           time.sleep(interval)
//           n -= 1
//   p = multiprocessing.Process(target = worker, args = (3,))
//   p.start()
//   print("p.pid:", p.pid)
//   print("p.name:", p.name)
//   print("p.is_alive:", p.is_alive())
//
// Output: `p.pid: 1908`, `p.name: Process-1`, `p.is_alive: True`, then five `The time is ...`
// lines from the child. Like the Python script, main() does not join: the child is not a daemon,
// so mproc joins it when main returns (Python joins it at interpreter exit).
//
// Usage: process_basics [interval-seconds]   (3 as in the seed; the test passes a shorter one)
#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>
#include <thread>

#include "mproc/process.h"

namespace mp = mproc;

namespace {

void worker(double interval) {
  for (int n = 5; n > 0; --n) {
    std::time_t now = std::time(nullptr);
    std::printf("The time is %s", std::ctime(&now));  // ctime ends with a newline
    std::fflush(stdout);
    std::this_thread::sleep_for(std::chrono::duration<double>(interval));
  }
}

}  // namespace

int main(int argc, char** argv) {
  double interval = argc > 1 ? std::stod(argv[1]) : 3.0;
  mp::Process p(worker, interval);
  p.start();
  std::printf("p.pid: %d\n", static_cast<int>(p.pid()));
  std::printf("p.name: %s\n", p.name().c_str());
  std::printf("p.is_alive: %s\n", p.is_alive() ? "True" : "False");
  std::fflush(stdout);
}
