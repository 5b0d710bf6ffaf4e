// Seed e: signalling with an Event. The Python it mirrors:
//
//   def wait_for_event(e):
//       print('wait_for_event: starting')
//       e.wait()
//       print('wait_for_event: e.is_set()->', e.is_set())
//
//   def wait_for_event_timeout(e, t):
//       print('wait_for_event_timeout: starting')
//       e.wait(t)
//       print('wait_for_event_timeout: e.is_set()->', e.is_set())
//       e.set()
//
//   if __name__ == '__main__':
//       e = multiprocessing.Event()
//       print("begin,e.is_set()", e.is_set())
//       w1 = multiprocessing.Process(name='block', target=wait_for_event, args=(e,))
//       w1.start()
//       w2 = multiprocessing.Process(name='nonblock', target=wait_for_event_timeout, args=(e, 2))
//       w2.start()
//       print('main: waiting before calling Event.set()')
//       time.sleep(3)
//       # e.set()
//       print('main: event is set')
//
// The timed waiter gives up after 2 s with the event still unset, then sets it itself, which
// wakes the blocked one. Each line is flushed at once so that the order between the processes
// is the order of the events.
#include <chrono>
#include <cstdio>
#include <thread>

#include "mproc/init.h"
#include "mproc/process.h"
#include "mproc/sync.h"
#include "mproc/task.h"

namespace mp = mproc;
using namespace std::chrono_literals;

namespace {

void say(const char* line, bool flag) {
  std::printf("%s %s\n", line, flag ? "True" : "False");
  std::fflush(stdout);
}

void say(const char* line) {
  std::printf("%s\n", line);
  std::fflush(stdout);
}

void wait_for_event(mp::Event e) {
  say("wait_for_event: starting");
  e.wait();  // blocks until the event is set
  say("wait_for_event: e.is_set()->", e.is_set());
}

void wait_for_event_timeout(mp::Event e, std::chrono::seconds t) {
  say("wait_for_event_timeout: starting");
  e.wait(t);  // gives up after t with the event still unset
  say("wait_for_event_timeout: e.is_set()->", e.is_set());
  e.set();
}

}  // namespace

// Registered, so that spawn and forkserver children can run them by name.
MPROC_TASK(wait_for_event);
MPROC_TASK(wait_for_event_timeout);

int main(int argc, char** argv) {
  mp::init(argc, argv);
  mp::Event e;
  say("begin,e.is_set()", e.is_set());
  mp::Process w1({.name = "block"}, wait_for_event, e);
  w1.start();
  mp::Process w2({.name = "nonblock"}, wait_for_event_timeout, e, 2s);
  w2.start();
  say("main: waiting before calling Event.set()");
  std::this_thread::sleep_for(3s);
  say("main: event is set");
  w1.join();
  w2.join();
  return *w1.exitcode() == 0 && *w2.exitcode() == 0 ? 0 : 1;
}
