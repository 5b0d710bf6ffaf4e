// Seed r: a JoinableQueue with a sentinel. The consumer (a daemon) prints each item and calls
// task_done(); on the None sentinel it stops, so the items put after it are never done and the
// producer's join() waits for ever. And task_done() called more often than items were taken
// raises ValueError.
//
//   from multiprocessing import JoinableQueue, Process
//   import time
//
//   def mark(q):
//       while True:
//           value = q.get()
//           print(value)
//           q.task_done()
//           time.sleep(1)
//           if value == None:
//               break
//
//   if __name__ == "__main__":
//       q = JoinableQueue()
//       p = Process(target=mark, args=(q,))
//       p.daemon = True
//       p.start()
//       for xx in range(5):
//           print(xx)
//           if xx == 3:
//               print("using the sentinel")
//               q.put(None)
//               print("sentinel put")
//           q.put("message %d" % xx)
//       q.join()          # stuck here for ever: the items after the sentinel are never done
//       print("the program really exits")
//
// The consumer sleeps 0.1 s instead of 1 s; join() is given 1 s and reports that it timed out.
#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <thread>

#include "mproc/errors.h"
#include "mproc/process.h"
#include "mproc/queue.h"

namespace mp = mproc;
using namespace std::chrono_literals;

void mark(mp::JoinableQueue<std::optional<std::string>>& q) {
  for (;;) {
    std::optional<std::string> value = q.get();
    std::printf("%s\n", value ? value->c_str() : "None");
    std::fflush(stdout);
    q.task_done();
    std::this_thread::sleep_for(100ms);
    if (!value) break;
  }
}

int main() {
  mp::JoinableQueue<std::optional<std::string>> q;
  mp::Process p(mp::ProcessOptions{.daemon = true}, [&] { mark(q); });
  p.start();
  for (int xx = 0; xx < 5; ++xx) {
    std::printf("%d\n", xx);
    if (xx == 3) {
      std::printf("using the sentinel\n");
      q.put(std::nullopt);
      std::printf("sentinel put\n");
    }
    std::fflush(stdout);
    q.put("message " + std::to_string(xx));
  }
  if (!q.join(1s)) std::printf("join timed out: %zu item(s) never done\n", q.qsize());
  p.join();

  // task_done() once more than items were taken.
  mp::JoinableQueue<int> counted;
  counted.put(1);
  (void)counted.get();
  counted.task_done();
  try {
    counted.task_done();
  } catch (const mp::ValueError& e) {
    std::printf("ValueError: %s\n", e.what());
  }
  std::printf("the program really exits\n");
  return 0;
}
