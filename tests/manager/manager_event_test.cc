// Manager Event (EventProxy, managed::Event): issue 6; parity 7.4 test_event.
#include <gtest/gtest.h>

#include "mproc/mproc.h"

#include "support.h"

namespace mproc {
namespace {

using namespace std::chrono_literals;

TEST(ManagerEvent, ChildSeesSetWaitsClearsAndParentSeesItCleared) {  // parity 7.4 test_event
  Manager manager;
  EventProxy event = manager.Event();
  event.set();
  auto child = test::fork_and_wait([&] {
    if (!event.is_set()) return 1;
    if (!event.wait(10s)) return 2;
    event.clear();
    return event.wait(0.001) ? 3 : 0;
  });
  ASSERT_FALSE(child.timed_out);
  EXPECT_EQ(child.code, 0);
  EXPECT_FALSE(event.is_set());
}

TEST(ManagerEvent, WaitWithTimeoutOnAClearEventReturnsFalse) {
  Manager manager;
  EventProxy event = manager.Event();
  EXPECT_FALSE(event.wait(20ms));
  EXPECT_FALSE(event.wait(0.02));
  EXPECT_FALSE(event.wait(-1.0));  // as threading's: a negative timeout does not wait
}

TEST(ManagerEvent, SetInAnotherProcessWakesTheWaiter) {
  Manager manager;
  EventProxy event = manager.Event();
  pid_t pid = test::fork_child([&] { return event.wait(20s) ? 0 : 1; });
  event.set();
  auto child = test::wait_child(pid);
  ASSERT_FALSE(child.timed_out);
  EXPECT_EQ(child.code, 0);
}

TEST(ManagerEvent, WaitOnASetEventReturnsTrueAtOnce) {
  Manager manager;
  EventProxy event = manager.Event();
  event.set();
  EXPECT_TRUE(event.wait());
  EXPECT_TRUE(event.wait(0s));
}

}  // namespace
}  // namespace mproc
