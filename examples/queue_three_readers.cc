// Seed q: a Queue(3) holding three messages is read by three processes, one message each; the
// main process closes its handle, after which a put raises.
//
//   from multiprocessing import Queue, Process
//   import time, os
//
//   def mark(q, interval):
//       time.sleep(interval)
//       print("process %d got: " % os.getpid() + queue.get(True))
//
//   if __name__ == "__main__":
//       queue = Queue(3)
//       queue.put("message 1")
//       queue.put("message 2")
//       queue.put("message 3")
//       p1 = Process(target=mark, args=(queue, 1))
//       p2 = Process(target=mark, args=(queue, 2))
//       p3 = Process(target=mark, args=(queue, 3))
//       p1.start()
//       p2.start()
//       p3.start()
//       queue.close()                  # no more puts from this process
//       # queue.put("message 4")       # would raise
//       print("main done")
//
// The intervals are 0.1, 0.2 and 0.3 s; the commented-out put is made, and its ValueError shown.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "mproc/errors.h"
#include "mproc/process.h"
#include "mproc/queue.h"

namespace mp = mproc;
using namespace std::chrono_literals;

void mark(mp::Queue<std::string>& q, std::chrono::milliseconds interval) {
  std::this_thread::sleep_for(interval);
  std::printf("process %d got: %s\n", static_cast<int>(::getpid()), q.get(true).c_str());
}

int main() {
  mp::Queue<std::string> queue(3);
  queue.put("message 1");
  queue.put("message 2");
  queue.put("message 3");
  mp::Process p1([&] { mark(queue, 100ms); });
  mp::Process p2([&] { mark(queue, 200ms); });
  mp::Process p3([&] { mark(queue, 300ms); });
  p1.start();
  p2.start();
  p3.start();
  queue.close();  // this process's handle only: the readers keep theirs
  try {
    queue.put("message 4");
  } catch (const mp::ValueError& e) {
    std::printf("put after close: ValueError: %s\n", e.what());
  }
  std::printf("main done\n");
  std::fflush(stdout);
  p1.join();
  p2.join();
  p3.join();
  return 0;
}
