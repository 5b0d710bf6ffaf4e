// Manager Semaphore and BoundedSemaphore (AcquirerProxy, managed::Semaphore): issue 6; parity
// 7.4 test_semaphore, test_bounded_semaphore.
#include <gtest/gtest.h>

#include "mproc/mproc.h"

#include "support.h"

namespace mproc {
namespace {

using namespace std::chrono_literals;

TEST(ManagerSemaphore, AcquiredInTheChildReleasedInTheParent) {  // parity 7.4 test_semaphore
  Manager manager;
  AcquirerProxy sem = manager.Semaphore(1);
  auto child = test::fork_and_wait([&] { return sem.acquire(true, 10.0) ? 0 : 1; });
  ASSERT_FALSE(child.timed_out);
  ASSERT_EQ(child.code, 0);
  EXPECT_FALSE(sem.acquire(false));  // the child's acquire holds the only unit
  sem.release();
  EXPECT_TRUE(sem.acquire(false));
}

TEST(ManagerBoundedSemaphore, AcquiredInTheChildReleasedInTheParent) {  // 7.4 bounded
  Manager manager;
  AcquirerProxy sem = manager.BoundedSemaphore(1);
  auto child = test::fork_and_wait([&] { return sem.acquire(true, 10.0) ? 0 : 1; });
  ASSERT_FALSE(child.timed_out);
  ASSERT_EQ(child.code, 0);
  sem.release();
  EXPECT_TRUE(sem.acquire(false));
}

TEST(ManagerBoundedSemaphore, ReleaseAboveTheInitialValueThrowsValueError) {
  Manager manager;
  AcquirerProxy sem = manager.BoundedSemaphore(2);
  ASSERT_TRUE(sem.acquire());
  sem.release();
  EXPECT_THROW(sem.release(), ValueError);
}

TEST(ManagerSemaphore, PlainSemaphoreMayBeReleasedAboveItsInitialValue) {
  Manager manager;
  AcquirerProxy sem = manager.Semaphore(0);
  sem.release();
  sem.release();
  EXPECT_TRUE(sem.acquire(false));
  EXPECT_TRUE(sem.acquire(false));
  EXPECT_FALSE(sem.acquire(false));
}

TEST(ManagerSemaphore, AcquireAtZeroTimesOutFalse) {
  Manager manager;
  AcquirerProxy sem = manager.Semaphore(0);
  EXPECT_FALSE(sem.acquire(20ms));
  EXPECT_FALSE(sem.acquire(true, -1.0));  // threading.Semaphore: a negative timeout tries once
  EXPECT_THROW((void)sem.acquire(false, 1.0), ValueError);
}

TEST(ManagerSemaphore, WaiterWakesOnAReleaseInAnotherProcess) {
  Manager manager;
  AcquirerProxy sem = manager.Semaphore(0);
  pid_t pid = test::fork_child([&] { return sem.acquire(20s) ? 0 : 1; });
  sem.release();
  auto child = test::wait_child(pid);
  ASSERT_FALSE(child.timed_out);
  EXPECT_EQ(child.code, 0);
}

TEST(ManagerSemaphore, NegativeInitialValueIsValueError) {
  Manager manager;
  EXPECT_THROW((void)manager.Semaphore(-1), ValueError);
}

TEST(ManagerSemaphore, LockedIsNotExposed) {  // threading.Semaphore has no locked()
  Manager manager;
  AcquirerProxy sem = manager.Semaphore(1);
  EXPECT_THROW((void)sem.locked(), AttributeError);
}

}  // namespace
}  // namespace mproc
