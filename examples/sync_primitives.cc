// Seed o: "Lock, RLock: used as in threading. Event, Condition, Semaphore: used as in threading"
// -- across processes. The Python it mirrors (the threading idioms, with processes):
//
//   lock = multiprocessing.Lock()
//   def add(counter, lock):
//       for _ in range(1000):
//           with lock:
//               counter.value += 1
//
//   rlock = multiprocessing.RLock()
//   with rlock:
//       with rlock:           # the holder may enter again
//           ...
//
//   sem = multiprocessing.Semaphore(2)
//   def worker(sem):
//       with sem:             # at most 2 workers inside at once
//           ...
//
//   event = multiprocessing.Event()
//   def waiter(event): event.wait()
//   event.set()
//
//   cond = multiprocessing.Condition()
//   def consumer(cond, item):
//       with cond:
//           cond.wait_for(lambda: item.value != 0)
//   with cond:
//       item.value = 42
//       cond.notify()
//
//   barrier = multiprocessing.Barrier(3)
//   def party(barrier): barrier.wait()
//
// Every part runs real processes; the parent prints one line per primitive once its children
// have finished.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <mutex>
#include <thread>
#include <vector>

#include "mproc/process.h"
#include "mproc/sharedctypes.h"
#include "mproc/sync.h"

namespace mp = mproc;
using namespace std::chrono_literals;

namespace {

// Starts every process, joins them all; true when each exited with 0.
bool run_all(std::vector<mp::Process>& processes) {
  for (auto& p : processes) p.start();
  bool ok = true;
  for (auto& p : processes) {
    p.join();
    ok = ok && *p.exitcode() == 0;
  }
  return ok;
}

bool lock_demo() {
  mp::Lock lock;
  mp::RawValue<int> counter(0);
  std::vector<mp::Process> adders;
  for (int i = 0; i < 4; ++i) {
    adders.emplace_back([=]() mutable {
      for (int n = 0; n < 1000; ++n) {
        std::scoped_lock hold(lock);  // `with lock:`
        *counter += 1;
      }
    });
  }
  bool ok = run_all(adders);
  std::printf("Lock: 4 processes x 1000 increments -> %d\n", counter.value());
  return ok && counter.value() == 4000;
}

bool rlock_demo() {
  mp::RLock rlock;
  mp::RawValue<int> depth(0);
  std::vector<mp::Process> one;
  one.emplace_back([=]() mutable {
    std::scoped_lock outer(rlock);
    std::scoped_lock inner(rlock);  // the holder enters again
    depth = 2;
  });
  bool ok = run_all(one);
  std::printf("RLock: entered %d times by one process, then free: %s\n", depth.value(),
              rlock.locked() ? "no" : "yes");
  return ok && depth.value() == 2 && !rlock.locked();
}

bool semaphore_demo() {
  mp::Semaphore sem(2);
  mp::RawValue<int> inside(0), most(0);
  mp::Lock bookkeeping;
  std::vector<mp::Process> workers;
  for (int i = 0; i < 5; ++i) {
    workers.emplace_back([=]() mutable {
      std::scoped_lock slot(sem);  // `with sem:`
      {
        std::scoped_lock hold(bookkeeping);
        *inside += 1;
        if (*inside > *most) *most = *inside;
      }
      std::this_thread::sleep_for(20ms);
      std::scoped_lock hold(bookkeeping);
      *inside -= 1;
    });
  }
  bool ok = run_all(workers);
  std::printf("Semaphore(2): 5 processes, at most %d inside at once\n", most.value());
  return ok && most.value() <= 2;
}

bool event_demo() {
  mp::Event event;
  mp::Process waiter([=]() mutable {
    if (!event.wait(10s)) std::_Exit(1);
  });
  waiter.start();
  std::this_thread::sleep_for(50ms);
  event.set();
  waiter.join();
  std::printf("Event: the child %s the event set by the parent\n",
              *waiter.exitcode() == 0 ? "saw" : "missed");
  return *waiter.exitcode() == 0;
}

bool condition_demo() {
  mp::Condition cond;
  mp::RawValue<int> item(0), got(0);
  mp::Process consumer([=]() mutable {
    std::scoped_lock hold(cond);
    cond.wait_for([&] { return item.value() != 0; });
    got = item.value();
  });
  consumer.start();
  {
    std::scoped_lock hold(cond);
    item = 42;
    cond.notify();
  }
  consumer.join();
  std::printf("Condition: the consumer got %d\n", got.value());
  return *consumer.exitcode() == 0 && got.value() == 42;
}

bool barrier_demo() {
  mp::RawValue<int> actions(0);
  mp::Barrier barrier(3, [=] { *actions += 1; });
  std::vector<mp::Process> parties;
  for (int i = 0; i < 3; ++i) parties.emplace_back([=]() mutable { (void)barrier.wait(10s); });
  bool ok = run_all(parties);
  std::printf("Barrier: 3 processes passed together, the action ran %d time(s)\n", actions.value());
  return ok && actions.value() == 1;
}

}  // namespace

int main() {
  bool ok = lock_demo();
  ok = rlock_demo() && ok;
  ok = semaphore_demo() && ok;
  ok = event_demo() && ok;
  ok = condition_demo() && ok;
  ok = barrier_demo() && ok;
  return ok ? 0 : 1;
}
