// Seed d: a producer process writes A, B, C to a Queue; a reader process drains it.
//
//   from multiprocessing import Process, Queue
//   import time, random
//
//   def write(q):
//       for value in ['A', 'B', 'C']:
//           print('Put %s to queue...' % value)
//           q.put(value)
//           time.sleep(random.random())
//
//   def read(q):
//       time.sleep(1)
//       while not q.empty():
//           print('Get %s from queue.' % q.get(True))
//           time.sleep(1)
//
//   if __name__ == '__main__':
//       q = Queue()
//       pw = Process(target=write, args=(q,))
//       pr = Process(target=write, args=(q,))   # (sic: the seed starts write twice)
//       pw.start()
//       pr.start()
//       pw.join()
//       pr.join()
//       print('Done!')
//
// The reader runs `read`, as the seed means to. The writer sleeps random() * 0.1 s between puts
// and the reader 0.1 s between gets, so that the reader, starting after 1 s, finds all three.
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <thread>

#include "mproc/process.h"
#include "mproc/queue.h"

namespace mp = mproc;
using namespace std::chrono_literals;

void write(mp::Queue<std::string>& q) {
  std::mt19937 rng(std::random_device{}());
  std::uniform_real_distribution<double> random(0.0, 0.1);
  for (const char* value : {"A", "B", "C"}) {
    std::printf("Put %s to queue...\n", value);
    std::fflush(stdout);
    q.put(value);
    std::this_thread::sleep_for(std::chrono::duration<double>(random(rng)));
  }
}

void read(mp::Queue<std::string>& q) {
  std::this_thread::sleep_for(1s);
  while (!q.empty()) {
    std::printf("Get %s from queue.\n", q.get(true).c_str());
    std::fflush(stdout);
    std::this_thread::sleep_for(100ms);
  }
}

int main() {
  mp::Queue<std::string> q;
  mp::Process pw([&] { write(q); });
  mp::Process pr([&] { read(q); });
  pw.start();
  pr.start();
  pw.join();
  pr.join();
  std::printf("Done!\n");
  return 0;
}
