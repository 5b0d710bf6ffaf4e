// Semaphore and BoundedSemaphore (parity 4.2), and their robustness when a process is killed.
#include <signal.h>
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

TEST(Semaphore, GetValueCountsDownAndAcquireAtZeroWithoutBlockingReturnsFalse) {
  Semaphore sem(2);
  EXPECT_EQ(sem.get_value(), 2u);
  EXPECT_TRUE(sem.acquire());
  EXPECT_EQ(sem.get_value(), 1u);
  EXPECT_TRUE(sem.acquire(false));
  EXPECT_EQ(sem.get_value(), 0u);
  EXPECT_FALSE(sem.acquire(false));
  EXPECT_EQ(sem.get_value(), 0u);
  sem.release();
  EXPECT_EQ(sem.get_value(), 1u);
}

TEST(Semaphore, ReleasesMayGoBeyondTheInitialValue) {
  Semaphore sem(2);
  sem.release();
  EXPECT_EQ(sem.get_value(), 3u);
  sem.release();
  EXPECT_EQ(sem.get_value(), 4u);
  sem.release(3);
  EXPECT_EQ(sem.get_value(), 7u);
}

TEST(Semaphore, NonBlockingAcquiresAtZeroReturnAtOnce) {
  Semaphore sem(0);
  double took = test::seconds_to_run([&] {
    EXPECT_FALSE(sem.acquire(false));
    EXPECT_FALSE(sem.acquire(Deadline::now()));
    EXPECT_FALSE(sem.acquire(0ms));
    EXPECT_FALSE(sem.acquire(-1s));
  });
  EXPECT_LT(took, 0.05);
}

TEST(Semaphore, TimedAcquireAtZeroReturnsFalseAfterAboutTheTimeout) {
  Semaphore sem(0);
  bool got = true;
  double took = test::seconds_to_run([&] { got = sem.acquire(300ms); });
  EXPECT_FALSE(got);
  EXPECT_GE(took, 0.2);
  EXPECT_LT(took, 2.0);
  took = test::seconds_to_run([&] { got = sem.acquire(Deadline::after(200ms)); });
  EXPECT_FALSE(got);
  EXPECT_GE(took, 0.1);
  EXPECT_LT(took, 2.0);
}

TEST(Semaphore, AReleaseInAnotherProcessWakesAWaiterPromptly) {
  Semaphore sem(0);
  Event waiting;
  pid_t child = fork_child([=]() mutable {
    waiting.set();
    return sem.acquire(10s) ? 0 : 1;
  });
  ASSERT_TRUE(waiting.wait(10s));
  test::settle(100ms);  // let it fall asleep
  sem.release();
  double took = test::seconds_to_run([&] { EXPECT_EQ(wait_child(child).code, 0); });
  EXPECT_LT(took, 2.0);
  EXPECT_EQ(sem.get_value(), 0u);
}

TEST(Semaphore, ReleaseNWakesNWaiters) {
  Semaphore sem(0);
  SharedInts passed;
  std::vector<pid_t> children;
  for (int i = 0; i < 4; ++i) {
    children.push_back(fork_child([&] {
      if (!sem.acquire(10s)) return 1;
      passed->fetch_add(1);
      return 0;
    }));
  }
  test::settle(100ms);
  sem.release(3);
  EXPECT_TRUE(eventually([&] { return passed->load() == 3; }));
  test::settle(100ms);
  EXPECT_EQ(passed->load(), 3);
  sem.release();
  for (pid_t c : children) EXPECT_EQ(wait_child(c).code, 0);
  EXPECT_EQ(passed->load(), 4);
}

TEST(Semaphore, NeverLetsMoreThanItsValueInAtOnce) {
  Semaphore sem(2);
  SharedInts inside(2);  // [0]: now inside, [1]: most ever inside
  std::vector<pid_t> children;
  for (int c = 0; c < 4; ++c) {
    children.push_back(fork_child([&] {
      for (int i = 0; i < 20000; ++i) {
        if (!sem.acquire(20s)) return 1;
        int now = inside.at(0).fetch_add(1) + 1;
        int most = inside.at(1).load();
        while (now > most && !inside.at(1).compare_exchange_weak(most, now)) {
        }
        inside.at(0).fetch_sub(1);
        sem.release();
      }
      return 0;
    }));
  }
  for (pid_t c : children) EXPECT_EQ(wait_child(c, 60s).code, 0);
  EXPECT_LE(inside.at(1).load(), 2);
  EXPECT_EQ(sem.get_value(), 2u);
}

TEST(Semaphore, AWaiterKilledWithSigkillDoesNotBreakTheOthers) {
  Semaphore sem(0);
  pid_t doomed = fork_child([=]() mutable { return sem.acquire(20s) ? 0 : 1; });
  test::settle(100ms);
  ::kill(doomed, SIGKILL);
  EXPECT_EQ(wait_child(doomed).code, -SIGKILL);
  pid_t survivor = fork_child([=]() mutable { return sem.acquire(10s) ? 0 : 1; });
  test::settle(50ms);
  sem.release();
  EXPECT_EQ(wait_child(survivor).code, 0);
  EXPECT_EQ(sem.get_value(), 0u);
}

TEST(Semaphore, AttachByNameReachesTheSameCounter) {
  Semaphore sem(1);
  auto result = fork_and_wait([name = sem.name()] {
    Semaphore same = Semaphore::attach(name);
    if (!same.acquire(false)) return 1;
    same.release(5);
    return 0;
  });
  EXPECT_EQ(result.code, 0);
  EXPECT_EQ(sem.get_value(), 5u);
  EXPECT_THROW((void)Semaphore::attach(Event().name()), ValueError);
}

TEST(Semaphore, ReprShowsTheValue) {
  Semaphore sem(2);
  EXPECT_EQ(sem.repr(), "<Semaphore(value=2)>");
  std::ostringstream os;
  os << BoundedSemaphore(3);
  EXPECT_EQ(os.str(), "<BoundedSemaphore(value=3, maxvalue=3)>");
}

TEST(Semaphore, IsLockable) {
  Semaphore sem(1);
  {
    std::scoped_lock hold(sem);
    EXPECT_EQ(sem.get_value(), 0u);
    EXPECT_FALSE(sem.try_lock());
  }
  EXPECT_EQ(sem.get_value(), 1u);
}

TEST(BoundedSemaphore, BehavesLikeASemaphoreWithinItsBound) {
  BoundedSemaphore sem(2);
  EXPECT_TRUE(sem.acquire());
  EXPECT_EQ(sem.get_value(), 1u);
  EXPECT_TRUE(sem.acquire(false));
  EXPECT_FALSE(sem.acquire(false));
  EXPECT_FALSE(sem.acquire(50ms));
  sem.release();
  sem.release();
  EXPECT_EQ(sem.get_value(), 2u);
}

TEST(BoundedSemaphore, ReleaseAboveTheInitialValueThrowsValueError) {
  BoundedSemaphore sem(2);
  EXPECT_THROW(sem.release(), ValueError);
  sem.acquire();
  EXPECT_THROW(sem.release(2), ValueError);
  EXPECT_EQ(sem.get_value(), 1u);
  sem.release();
  EXPECT_EQ(sem.get_value(), 2u);
}

TEST(BoundedSemaphore, TheBoundHoldsInAnotherProcess) {
  BoundedSemaphore sem(1);
  auto result = fork_and_wait([name = sem.name()] {
    BoundedSemaphore same = BoundedSemaphore::attach(name);
    try {
      same.release();
    } catch (const ValueError&) {
      return 0;
    }
    return 1;
  });
  EXPECT_EQ(result.code, 0);
  EXPECT_THROW((void)BoundedSemaphore::attach(Semaphore().name()), ValueError);
}

TEST(Semaphore, EncodingSendsTheNameAndDecodingAttaches) {
  Semaphore sem(3);
  Semaphore back = decode<Semaphore>(encode(sem));
  EXPECT_TRUE(back.acquire(false));
  EXPECT_EQ(sem.get_value(), 2u);
  BoundedSemaphore bounded(1);
  BoundedSemaphore bounded_back = decode<BoundedSemaphore>(encode(bounded));
  EXPECT_THROW(bounded_back.release(), ValueError);
}

}  // namespace
}  // namespace mproc
