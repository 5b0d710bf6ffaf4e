// Manager Condition (ConditionProxy, managed::Condition): a condition with its own RLock in the
// server; issue 6; parity 7.4 test_condition.
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "mproc/mproc.h"

#include "support.h"

namespace mproc {
namespace {

using namespace std::chrono_literals;

TEST(ManagerCondition, AcquireAndReleaseFromAChild) {  // parity 7.4 test_condition
  Manager manager;
  ConditionProxy cond = manager.Condition();
  auto child = test::fork_and_wait([&] {
    if (!cond.acquire(true, 10.0)) return 1;
    cond.release();
    return 0;
  });
  ASSERT_FALSE(child.timed_out);
  EXPECT_EQ(child.code, 0);
  EXPECT_TRUE(cond.acquire(false));  // the child let it go
  cond.release();
}

TEST(ManagerCondition, WaitWithoutOwningTheLockIsValueError) {
  Manager manager;
  ConditionProxy cond = manager.Condition();
  EXPECT_THROW((void)cond.wait(0.01), ValueError);
}

TEST(ManagerCondition, NotifyWithoutOwningTheLockIsValueError) {
  Manager manager;
  ConditionProxy cond = manager.Condition();
  EXPECT_THROW(cond.notify(), ValueError);
  EXPECT_THROW(cond.notify_all(), ValueError);
  EXPECT_THROW(cond.release(), ValueError);
}

TEST(ManagerCondition, WaitTimesOutFalseAndKeepsEveryLevelOfTheLock) {
  Manager manager;
  ConditionProxy cond = manager.Condition();
  ASSERT_TRUE(cond.acquire());
  ASSERT_TRUE(cond.acquire());
  EXPECT_FALSE(cond.wait(20ms));
  cond.release();
  cond.release();
  EXPECT_THROW(cond.release(), ValueError);
}

TEST(ManagerCondition, NotifyAllWakesAWaiterInAnotherProcess) {
  Manager manager;
  ConditionProxy cond = manager.Condition();
  EventProxy flag = manager.Event();
  pid_t pid = test::fork_child([&] {
    std::unique_lock hold(cond);
    return cond.wait_for([&] { return flag.is_set(); }, 20s) ? 0 : 1;
  });
  {
    std::unique_lock hold(cond);  // the flag changes under the lock: no lost wake-up
    flag.set();
    cond.notify_all();
  }
  auto child = test::wait_child(pid);
  ASSERT_FALSE(child.timed_out);
  EXPECT_EQ(child.code, 0);
}

TEST(ManagerCondition, WaitForReturnsFalseWhenThePredicateStaysFalse) {
  Manager manager;
  ConditionProxy cond = manager.Condition();
  std::unique_lock hold(cond);
  int calls = 0;
  EXPECT_FALSE(cond.wait_for([&] { return ++calls < 0; }, 30ms));
  EXPECT_GE(calls, 2);  // once before waiting, once after the wait timed out
}

TEST(ManagerCondition, NotifyWakesOnlyNWaiters) {
  Manager manager;
  ConditionProxy cond = manager.Condition();
  auto woken = manager.Queue<int>();
  auto waiting = manager.Semaphore(0);
  auto waiter = [&](int id) {
    std::unique_lock hold(cond);
    waiting.release();
    if (cond.wait(20s)) woken.put(id);
  };
  std::thread a(waiter, 1), b(waiter, 2);
  ASSERT_TRUE(waiting.acquire(20s));
  ASSERT_TRUE(waiting.acquire(20s));
  {
    std::unique_lock hold(cond);  // both are in wait(): they released the lock to us
    cond.notify(1);
  }
  (void)woken.get(20s);
  EXPECT_THROW((void)woken.get(50ms), Empty);  // the other one still waits
  {
    std::unique_lock hold(cond);
    cond.notify(1);
  }
  (void)woken.get(20s);
  a.join();
  b.join();
}

}  // namespace
}  // namespace mproc
