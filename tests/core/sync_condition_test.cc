// Condition (parity 4.3), and its robustness when a waiter is killed.
#include <signal.h>
#include <sys/time.h>
#include <unistd.h>

#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "mproc/errors.h"
#include "mproc/serialize.h"
#include "mproc/sync.h"

#include "support.h"
#include "sync_test_util.h"

namespace mproc {
namespace {

using namespace std::chrono_literals;
using test::eventually;
using test::fork_and_wait;
using test::fork_child;
using test::SharedInts;
using test::wait_child;

// Waiters of the parity tests: count themselves sleeping (under the lock, just before wait()),
// wait, and count themselves woken if the wait returned true (timed_out otherwise).
struct Counts {
  SharedInts ints{3};
  std::atomic<int>& sleeping() const { return ints.at(0); }
  std::atomic<int>& woken() const { return ints.at(1); }
  std::atomic<int>& timed_out() const { return ints.at(2); }
};

int waiter(Condition cond, const Counts& counts, Deadline deadline) {
  std::scoped_lock hold(cond);
  counts.sleeping().fetch_add(1);
  bool notified = cond.wait(deadline);
  (notified ? counts.woken() : counts.timed_out()).fetch_add(1);
  return 0;
}

// Starts `processes` child waiters, then `threads` thread waiters (forking before any thread
// exists). Each waits at most `timeout`.
struct Waiters {
  std::vector<pid_t> children;
  std::vector<std::thread> threads;

  Waiters(const Condition& cond, const Counts& counts, int processes, int threads_,
          std::chrono::milliseconds timeout = 20s) {
    for (int i = 0; i < processes; ++i) {
      children.push_back(
          fork_child([&] { return waiter(cond, counts, Deadline::after(timeout)); }));
    }
    for (int i = 0; i < threads_; ++i) {
      threads.emplace_back(
          [&cond, &counts, timeout] { waiter(cond, counts, Deadline::after(timeout)); });
    }
  }
  void join() {
    for (pid_t c : children) EXPECT_EQ(wait_child(c).code, 0);
    for (auto& t : threads) t.join();
    children.clear();
    threads.clear();
  }
  ~Waiters() { join(); }
};

// Once they all count as sleeping, taking the lock proves they are inside wait().
void until_sleeping(Condition& cond, const Counts& counts, int n) {
  ASSERT_TRUE(eventually([&] { return counts.sleeping().load() == n; }));
  std::scoped_lock hold(cond);
}

void notify(Condition& cond, std::uint32_t n) {
  std::scoped_lock hold(cond);
  cond.notify(n);
}

TEST(Condition, NotifyWakesExactlyOneWaiterAndASecondNotifyTheOther) {
  Condition cond;
  Counts counts;
  Waiters waiters(cond, counts, 1, 1);
  until_sleeping(cond, counts, 2);
  notify(cond, 1);
  EXPECT_TRUE(eventually([&] { return counts.woken().load() == 1; }));
  test::settle();
  EXPECT_EQ(counts.woken().load(), 1);
  notify(cond, 1);
  EXPECT_TRUE(eventually([&] { return counts.woken().load() == 2; }));
  waiters.join();
  EXPECT_EQ(counts.timed_out().load(), 0);
  EXPECT_EQ(cond.repr().substr(cond.repr().size() - 5), ", 0)>") << cond.repr();
}

TEST(Condition, SixTimedWaitersTimeOutThenSixFreshOnesWakeOnNotifyAll) {
  Condition cond;
  Counts counts;
  {
    Waiters waiters(cond, counts, 3, 3, 300ms);
    waiters.join();
  }
  EXPECT_EQ(counts.timed_out().load(), 6);
  EXPECT_EQ(counts.woken().load(), 0);
  counts.sleeping() = 0;
  Waiters waiters(cond, counts, 3, 3);
  until_sleeping(cond, counts, 6);
  test::settle();
  EXPECT_EQ(counts.woken().load(), 0);
  {
    std::scoped_lock hold(cond);
    cond.notify_all();
  }
  EXPECT_TRUE(eventually([&] { return counts.woken().load() == 6; }));
  waiters.join();
  EXPECT_EQ(counts.timed_out().load(), 6);
}

TEST(Condition, NotifyNWakesExactlyN) {
  Condition cond;
  Counts counts;
  Waiters waiters(cond, counts, 3, 3);
  until_sleeping(cond, counts, 6);
  notify(cond, 2);
  EXPECT_TRUE(eventually([&] { return counts.woken().load() == 2; }));
  test::settle();
  EXPECT_EQ(counts.woken().load(), 2);
  notify(cond, 4);
  EXPECT_TRUE(eventually([&] { return counts.woken().load() == 6; }));
  notify(cond, 3);  // nobody left: nothing happens
  test::settle(100ms);
  EXPECT_EQ(counts.woken().load(), 6);
  waiters.join();
  EXPECT_EQ(counts.timed_out().load(), 0);
}

TEST(Condition, ANotifyDoesNotWakeSomeoneWhoStartsWaitingAfterIt) {
  Condition cond;
  notify(cond, 3);
  std::scoped_lock hold(cond);
  EXPECT_FALSE(cond.wait(200ms));
}

TEST(Condition, WaitReturnsFalseAfterAboutTheTimeout) {
  Condition cond;
  std::scoped_lock hold(cond);
  bool got = true;
  double took = test::seconds_to_run([&] { got = cond.wait(300ms); });
  EXPECT_FALSE(got);
  EXPECT_GE(took, 0.2);
  EXPECT_LT(took, 2.0);
}

TEST(Condition, WaitResultIsFalseOnTimeoutAndTrueWhenAChildNotifies) {
  Condition cond;
  Event ready;
  std::scoped_lock hold(cond);
  EXPECT_FALSE(cond.wait(0s));
  EXPECT_FALSE(cond.wait(100ms));
  pid_t child = fork_child([&] {
    ready.wait(10s);
    std::scoped_lock child_hold(cond);  // we are inside wait() once we get the lock
    cond.notify();
    return 0;
  });
  ready.set();
  EXPECT_TRUE(cond.wait(60s));
  EXPECT_EQ(wait_child(child).code, 0);
}

void on_alarm(int) {}

TEST(Condition, ASignalHandledDuringWaitNeitherEndsNorBreaksTheWait) {
  // [ADAPT] of test_wait_result's SIGINT: C++ has no KeyboardInterrupt; a handled signal must
  // not end the wait early, and the wait still ends on time.
  struct sigaction action {};
  action.sa_handler = on_alarm;
  struct sigaction old {};
  ASSERT_EQ(::sigaction(SIGALRM, &action, &old), 0);
  itimerval timer{};
  timer.it_value.tv_usec = 100'000;
  Condition cond;
  std::scoped_lock hold(cond);
  ASSERT_EQ(::setitimer(ITIMER_REAL, &timer, nullptr), 0);
  bool got = true;
  double took = test::seconds_to_run([&] { got = cond.wait(400ms); });
  ::sigaction(SIGALRM, &old, nullptr);
  EXPECT_FALSE(got);
  EXPECT_GE(took, 0.3);
}

TEST(Condition, WaitForReturnsTrueOnceAChildMakesThePredicateTrue) {
  Condition cond;
  SharedInts state;
  pid_t child = fork_child([&] {
    for (int i = 1; i <= 4; ++i) {
      ::usleep(20'000);
      std::scoped_lock hold(cond);
      state->store(i);
      cond.notify();
    }
    return 0;
  });
  {
    std::scoped_lock hold(cond);
    EXPECT_TRUE(cond.wait_for([&] { return state->load() == 4; }, 10s));
    EXPECT_EQ(state->load(), 4);
  }
  EXPECT_EQ(wait_child(child).code, 0);
}

TEST(Condition, WaitForReturnsFalseAfterTheTimeoutWhenThePredicateStaysFalse) {
  Condition cond;
  std::scoped_lock hold(cond);
  bool got = true;
  double took = test::seconds_to_run([&] { got = cond.wait_for([] { return false; }, 300ms); });
  EXPECT_FALSE(got);
  EXPECT_GE(took, 0.2);
  EXPECT_LT(took, 2.0);
}

TEST(Condition, WaitOrNotifyWithoutTheLockThrowsValueError) {
  Condition cond;
  EXPECT_THROW(cond.wait(10ms), ValueError);
  EXPECT_THROW(cond.notify(), ValueError);
  EXPECT_THROW(cond.notify_all(), ValueError);
  cond.acquire();
  std::thread other([&] { EXPECT_THROW(cond.notify(), ValueError); });
  other.join();
  cond.release();
}

TEST(Condition, WaitRestoresTheDepthOfAnRLock) {
  RLock lock;
  Condition cond(lock);
  lock.acquire();
  lock.acquire();
  lock.acquire();
  EXPECT_FALSE(cond.wait(10ms));
  EXPECT_EQ(lock.repr(), "<RLock(" + std::to_string(::getpid()) + ", 3)>");
  lock.release();
  lock.release();
  lock.release();
  EXPECT_FALSE(lock.locked());
}

TEST(Condition, WorksOverAPlainLock) {
  Lock lock;
  Condition cond(lock);
  Counts counts;
  Waiters waiters(cond, counts, 2, 0);
  until_sleeping(cond, counts, 2);
  EXPECT_FALSE(lock.locked());
  notify(cond, 2);
  waiters.join();
  EXPECT_EQ(counts.woken().load(), 2);
}

TEST(Condition, AWaiterKilledWithSigkillDoesNotBreakTheOthers) {
  Condition cond;
  Counts counts;
  pid_t doomed = fork_child([&] { return waiter(cond, counts, Deadline::after(20s)); });
  until_sleeping(cond, counts, 1);
  ::kill(doomed, SIGKILL);
  EXPECT_EQ(wait_child(doomed).code, -SIGKILL);
  Waiters waiters(cond, counts, 2, 0);
  until_sleeping(cond, counts, 3);
  notify(cond, 1);
  EXPECT_TRUE(eventually([&] { return counts.woken().load() == 1; }));
  notify(cond, 1);
  EXPECT_TRUE(eventually([&] { return counts.woken().load() == 2; }));
  waiters.join();
  EXPECT_EQ(counts.timed_out().load(), 0);
}

TEST(Condition, ABoundedBufferAcrossProcessesLosesNoWakeUp) {
  // Two conditions over one lock, a shelf of one item: every item needs a wake-up each way.
  RLock lock;
  Condition not_empty(lock), not_full(lock);
  SharedInts state(3);  // [0]: items on the shelf, [1]: consumed, [2]: done
  constexpr int kItems = 2000;
  std::vector<pid_t> consumers;
  for (int c = 0; c < 3; ++c) {
    consumers.push_back(fork_child([&] {
      for (;;) {
        std::scoped_lock hold(lock);
        bool ready = not_empty.wait_for(
            [&] { return state.at(0).load() > 0 || state.at(2).load() != 0; }, 10s);
        if (!ready) return 1;  // a lost wake-up
        if (state.at(0).load() == 0) return 0;
        state.at(0).fetch_sub(1);
        state.at(1).fetch_add(1);
        not_full.notify();
      }
    }));
  }
  for (int i = 0; i < kItems; ++i) {
    std::scoped_lock hold(lock);
    ASSERT_TRUE(not_full.wait_for([&] { return state.at(0).load() == 0; }, 10s)) << "item " << i;
    state.at(0).fetch_add(1);
    not_empty.notify();
  }
  {
    std::scoped_lock hold(lock);
    state.at(2).store(1);
    not_empty.notify_all();
  }
  for (pid_t c : consumers) EXPECT_EQ(wait_child(c, 60s).code, 0);
  EXPECT_EQ(state.at(1).load(), kItems);
}

TEST(Condition, AttachByNameReachesTheConditionAndItsLock) {
  Lock lock;
  Condition cond(lock);
  Event ready;
  pid_t child = fork_child([name = cond.name(), ready]() mutable {
    Condition same = Condition::attach(name);
    std::scoped_lock hold(same);
    ready.set();
    return same.wait(10s) ? 0 : 1;
  });
  ASSERT_TRUE(ready.wait(10s));
  {
    std::scoped_lock hold(cond);  // the child is inside wait() once we get the lock
    EXPECT_FALSE(lock.acquire(false));
    cond.notify();
  }
  EXPECT_EQ(wait_child(child).code, 0);
  EXPECT_THROW((void)Condition::attach(lock.name()), ValueError);
}

TEST(Condition, ReprShowsTheLockAndTheSleepers) {
  Condition cond;
  EXPECT_EQ(cond.repr(), "<Condition(<RLock(None, 0)>, 0)>");
  Counts counts;
  Waiters waiters(cond, counts, 1, 0);
  until_sleeping(cond, counts, 1);
  std::ostringstream os;
  os << cond;
  EXPECT_EQ(os.str(), "<Condition(<RLock(None, 0)>, 1)>");
  notify(cond, 1);
}

TEST(Condition, EncodingSendsTheNameAndDecodingAttachesItAndItsLock) {
  Condition cond;
  Condition back = decode<Condition>(encode(cond));
  EXPECT_EQ(back.name(), cond.name());
  std::scoped_lock hold(back);
  std::thread other([&] { EXPECT_FALSE(cond.try_lock()); });  // the same lock: held here
  other.join();
}

}  // namespace
}  // namespace mproc
