// Seed p: a Queue(3): the 4th put blocks (here: with a timeout, it raises Full); get with a
// timeout on an empty queue raises Empty; put_nowait / get_nowait; qsize, empty, full.
//
//   from multiprocessing import Queue
//   queue = Queue(3)  # a Queue that accepts 3 messages
//   queue.put("message 1")
//   queue.put("message 2")
//   queue.put("message 3")
//   print("before the 4th put")
//   queue.put("message 4")          # blocks for ever: the last line is never printed
//   print("after the 4th put")
//
// and the methods the seed lists: q.put(item, block, timeout) raises queue.Full after the
// timeout, or at once with block=False; q.get(block, timeout) raises queue.Empty likewise;
// put_nowait(item) == put(item, False); get_nowait() == get(False); qsize(), empty(), full().
#include <chrono>
#include <cstdio>
#include <string>

#include "mproc/errors.h"
#include "mproc/queue.h"

namespace mp = mproc;
using namespace std::chrono_literals;

int main() {
  mp::Queue<std::string> queue(3);
  queue.put("message 1");
  queue.put("message 2");
  queue.put("message 3");
  std::printf("qsize=%zu empty=%d full=%d\n", queue.qsize(), queue.empty(), queue.full());
  std::printf("before the 4th put\n");
  try {
    queue.put("message 4", true, 0.5);  // the seed's put blocks for ever; we wait 0.5 s
    std::printf("after the 4th put\n");
  } catch (const mp::Full&) {
    std::printf("put(timeout=0.5): Full\n");
  }
  try {
    queue.put_nowait("message 4");
  } catch (const mp::Full&) {
    std::printf("put_nowait: Full\n");
  }
  std::printf("get: %s\n", queue.get().c_str());
  queue.put_nowait("message 4");
  std::printf("get_nowait: %s\n", queue.get_nowait().c_str());
  std::printf("get(True, 1): %s\n", queue.get(true, 1.0).c_str());
  std::printf("get(timeout=1s): %s\n", queue.get(1s).c_str());
  std::printf("qsize=%zu empty=%d full=%d\n", queue.qsize(), queue.empty(), queue.full());
  try {
    (void)queue.get(true, 0.5);
  } catch (const mp::Empty&) {
    std::printf("get(timeout=0.5): Empty\n");
  }
  try {
    (void)queue.get_nowait();
  } catch (const mp::Empty&) {
    std::printf("get_nowait: Empty\n");
  }
  return 0;
}
