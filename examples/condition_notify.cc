// Seed g: one producer wakes every consumer with a Condition. The Python it mirrors:
//
//   def consumer(cond):
//       with cond:
//           print("consumer before wait")
//           cond.wait()
//           print("consumer after wait")
//
//   def producer(cond):
//       with cond:
//           print("producer before notifyAll")
//           cond.notify_all()
//           print("producer after notifyAll")
//
//   if __name__ == '__main__':
//       condition = mp.Condition()
//       p1 = mp.Process(name="p1", target=consumer, args=(condition,))
//       p2 = mp.Process(name="p2", target=consumer, args=(condition,))
//       p3 = mp.Process(name="p3", target=producer, args=(condition,))
//       p1.start()
//       time.sleep(2)
//       p2.start()
//       time.sleep(2)
//       p3.start()
//
// The seed relies on its sleeps for the consumers to be waiting before the producer notifies; a
// consumer that came late would wait for ever. Here the consumers wait for a shared flag that the
// producer sets before notify_all() (`wait_for`), which is the reliable form of the same program.
#include <chrono>
#include <cstdio>
#include <mutex>
#include <thread>

#include "mproc/process.h"
#include "mproc/sharedctypes.h"
#include "mproc/sync.h"

namespace mp = mproc;
using namespace std::chrono_literals;

namespace {

void say(const char* line) {
  std::printf("%s\n", line);
  std::fflush(stdout);
}

void consumer(mp::Condition cond, mp::RawValue<int> produced) {
  std::scoped_lock hold(cond);
  say("consumer before wait");
  cond.wait_for([&] { return produced.value() != 0; });
  say("consumer after wait");
}

void producer(mp::Condition cond, mp::RawValue<int> produced) {
  std::scoped_lock hold(cond);
  say("producer before notifyAll");
  produced = 1;
  cond.notify_all();
  say("producer after notifyAll");
}

}  // namespace

int main() {
  mp::Condition condition;
  mp::RawValue<int> produced(0);
  mp::Process p1({.name = "p1"}, consumer, condition, produced);
  mp::Process p2({.name = "p2"}, consumer, condition, produced);
  mp::Process p3({.name = "p3"}, producer, condition, produced);
  p1.start();
  std::this_thread::sleep_for(200ms);
  p2.start();
  std::this_thread::sleep_for(200ms);
  p3.start();
  int failed = 0;
  for (mp::Process* p : {&p1, &p2, &p3}) {
    p->join();
    failed += *p->exitcode() != 0;
  }
  return failed == 0 ? 0 : 1;
}
