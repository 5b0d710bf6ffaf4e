// Seed n: a Process subclass that overrides run(). The Python it mirrors:
//
//   import time
//   import multiprocessing
//   class ClockProcess(multiprocessing.Process):
//       def __init__(self, interval):
//           multiprocessing.Process.__init__(self)
//           self.interval = interval
//       def run(self):
//           n = 5
//           while n > 0:
//               print("the time is {0}".format(time.ctime()))
//               time.sleep(self.interval)
//               n -= 1
//   p = ClockProcess(3)
//   p.start()
//
// run() executes in the child; the parent, like the Python script, ends without joining and mproc
// joins the (non-daemon) child when main returns.
//
// Usage: process_subclass [interval-seconds]   (3 as in the seed; the test passes a shorter one)
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>
#include <thread>

#include "mproc/process.h"

namespace mp = mproc;

namespace {

class ClockProcess : public mp::Process {
 public:
  explicit ClockProcess(double interval) : interval_(interval) {}

  void run() override {
    for (int n = 5; n > 0; --n) {
      std::time_t now = std::time(nullptr);
      std::printf("the time is %s", std::ctime(&now));  // ctime ends with a newline
      std::fflush(stdout);
      std::this_thread::sleep_for(std::chrono::duration<double>(interval_));
    }
  }

 private:
  double interval_;
};

}  // namespace

int main(int argc, char** argv) {
  ClockProcess p(argc > 1 ? std::stod(argv[1]) : 3.0);
  p.start();
  std::printf("started %s (pid %d) from pid %d\n", p.name().c_str(), static_cast<int>(p.pid()),
              static_cast<int>(::getpid()));
  std::fflush(stdout);
}
