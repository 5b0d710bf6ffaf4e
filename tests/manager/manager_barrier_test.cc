// Manager Barrier (BarrierProxy, managed::Barrier): threading.Barrier in the server; issue 6;
// parity 7.4 test_barrier.
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "mproc/mproc.h"

#include "support.h"

namespace mproc {
namespace {

using namespace std::chrono_literals;

TEST(ManagerBarrier, PartiesIsFiveAndAChildCanReset) {  // parity 7.4 test_barrier
  Manager manager;
  BarrierProxy barrier = manager.Barrier(5);
  EXPECT_EQ(barrier.parties(), 5);
  auto child = test::fork_and_wait([&] {
    if (barrier.parties() != 5) return 1;
    barrier.reset();
    return 0;
  });
  ASSERT_FALSE(child.timed_out);
  EXPECT_EQ(child.code, 0);
  EXPECT_FALSE(barrier.broken());
}

TEST(ManagerBarrier, ReleasesEveryPartyWithDistinctIndices) {
  Manager manager;
  BarrierProxy barrier = manager.Barrier(3);
  auto indices = manager.Queue<std::int64_t>();
  pid_t a = test::fork_child([&] {
    indices.put(barrier.wait(20s));
    return 0;
  });
  pid_t b = test::fork_child([&] {
    indices.put(barrier.wait(20s));
    return 0;
  });
  std::set<std::int64_t> got{barrier.wait(20s)};
  got.insert(indices.get(20s));
  got.insert(indices.get(20s));
  EXPECT_EQ(got, (std::set<std::int64_t>{0, 1, 2}));
  EXPECT_EQ(test::wait_child(a).code, 0);
  EXPECT_EQ(test::wait_child(b).code, 0);
}

TEST(ManagerBarrier, TimeoutBreaksTheBarrier) {
  Manager manager;
  BarrierProxy barrier = manager.Barrier(2);
  EXPECT_THROW((void)barrier.wait(20ms), BrokenBarrierError);
  EXPECT_TRUE(barrier.broken());
  EXPECT_THROW((void)barrier.wait(20ms), BrokenBarrierError);  // until reset
  barrier.reset();
  EXPECT_FALSE(barrier.broken());
}

TEST(ManagerBarrier, DefaultTimeoutOfTheBarrierApplies) {
  Manager manager;
  BarrierProxy barrier = manager.Barrier(2, 0.02);
  EXPECT_THROW((void)barrier.wait(), BrokenBarrierError);
}

TEST(ManagerBarrier, AbortBreaksAWaiter) {
  Manager manager;
  BarrierProxy barrier = manager.Barrier(2);
  pid_t pid = test::fork_child([&] {
    try {
      (void)barrier.wait(20s);
    } catch (const BrokenBarrierError&) {
      return 0;
    }
    return 1;
  });
  for (int i = 0; i < 2000 && barrier.n_waiting() == 0; ++i) std::this_thread::sleep_for(5ms);
  EXPECT_EQ(barrier.n_waiting(), 1);
  barrier.abort();
  auto child = test::wait_child(pid);
  ASSERT_FALSE(child.timed_out);
  EXPECT_EQ(child.code, 0);
  EXPECT_TRUE(barrier.broken());
}

TEST(ManagerBarrier, ResetWhileWaitingBreaksTheWaiterAndTheBarrierIsReusable) {
  Manager manager;
  BarrierProxy barrier = manager.Barrier(2);
  std::thread waiter([&] { EXPECT_THROW((void)barrier.wait(20s), BrokenBarrierError); });
  for (int i = 0; i < 2000 && barrier.n_waiting() == 0; ++i) std::this_thread::sleep_for(5ms);
  barrier.reset();
  waiter.join();
  EXPECT_FALSE(barrier.broken());
  std::thread other([&] { (void)barrier.wait(20s); });
  EXPECT_NO_THROW((void)barrier.wait(20s));
  other.join();
}

TEST(ManagerBarrier, FewerThanOnePartyIsValueError) {
  Manager manager;
  EXPECT_THROW((void)manager.Barrier(0), ValueError);
}

}  // namespace
}  // namespace mproc
