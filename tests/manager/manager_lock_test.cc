// Manager Lock and RLock (AcquirerProxy, managed::Lock/RLock): threading's rules in the server
// (issue 6; parity 7.4 test_lock, test_rlock).
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "mproc/mproc.h"

#include "support.h"

namespace mproc {
namespace {

using namespace std::chrono_literals;

TEST(ManagerLock, ReleasedByAnotherProcessThanTheAcquirer) {  // parity 7.4 test_lock
  Manager manager;
  AcquirerProxy lock = manager.Lock();
  auto child = test::fork_and_wait([&] { return lock.acquire(true, 10.0) ? 0 : 1; });
  ASSERT_FALSE(child.timed_out);
  ASSERT_EQ(child.code, 0);
  EXPECT_TRUE(lock.locked());
  lock.release();
  EXPECT_FALSE(lock.locked());
}

TEST(ManagerLock, SecondReleaseThrowsValueError) {  // parity 7.4 test_lock (RuntimeError)
  Manager manager;
  AcquirerProxy lock = manager.Lock();
  ASSERT_TRUE(lock.acquire());
  lock.release();
  EXPECT_THROW(lock.release(), ValueError);
}

TEST(ManagerLock, AcquireOfAHeldLockTimesOutFalse) {
  Manager manager;
  AcquirerProxy lock = manager.Lock();
  ASSERT_TRUE(lock.acquire());
  EXPECT_FALSE(lock.acquire(20ms));
  EXPECT_FALSE(lock.acquire(true, 0.02));
  EXPECT_FALSE(lock.try_lock());
  lock.release();
  EXPECT_TRUE(lock.try_lock());
  lock.unlock();
}

TEST(ManagerLock, TimeoutWithNonBlockingOrNegativeIsValueError) {
  Manager manager;
  AcquirerProxy lock = manager.Lock();
  EXPECT_THROW((void)lock.acquire(false, 1.0), ValueError);
  EXPECT_THROW((void)lock.acquire(true, -1.0), ValueError);
}

TEST(ManagerLock, WaiterInAnotherProcessWakesOnRelease) {
  Manager manager;
  AcquirerProxy lock = manager.Lock();
  auto done = manager.Event();
  ASSERT_TRUE(lock.acquire());
  pid_t pid = test::fork_child([&] {
    if (!lock.acquire(20s)) return 1;
    done.set();
    lock.release();
    return 0;
  });
  EXPECT_FALSE(done.wait(20ms));  // the child is still blocked on the lock
  lock.release();
  EXPECT_TRUE(done.wait(20s));
  auto child = test::wait_child(pid);
  ASSERT_FALSE(child.timed_out);
  EXPECT_EQ(child.code, 0);
}

TEST(ManagerLock, WorksWithStdUniqueLock) {
  Manager manager;
  AcquirerProxy lock = manager.Lock();
  {
    std::unique_lock hold(lock);
    EXPECT_TRUE(lock.locked());
  }
  EXPECT_FALSE(lock.locked());
  std::unique_lock timed(lock, 1s);
  EXPECT_TRUE(timed.owns_lock());
}

TEST(ManagerRLock, AcquireReleaseAndLockedWorkFromAChild) {  // parity 7.4 test_rlock
  Manager manager;
  AcquirerProxy rlock = manager.RLock();
  auto child = test::fork_and_wait([&] {
    if (!rlock.acquire(true, 10.0)) return 1;
    if (!rlock.locked()) return 2;
    rlock.release();
    return rlock.locked() ? 3 : 0;
  });
  ASSERT_FALSE(child.timed_out);
  EXPECT_EQ(child.code, 0);
  EXPECT_FALSE(rlock.locked());
}

TEST(ManagerRLock, ReentersAndNeedsOneReleasePerAcquire) {
  Manager manager;
  AcquirerProxy rlock = manager.RLock();
  ASSERT_TRUE(rlock.acquire());
  ASSERT_TRUE(rlock.acquire(false));
  rlock.release();
  EXPECT_TRUE(rlock.locked());
  rlock.release();
  EXPECT_FALSE(rlock.locked());
  EXPECT_THROW(rlock.release(), ValueError);
}

TEST(ManagerRLock, IsOwnedByTheAcquiringThread) {
  Manager manager;
  AcquirerProxy rlock = manager.RLock();
  ASSERT_TRUE(rlock.acquire());
  bool other_got_it = true;
  bool other_release_threw = false;
  std::thread other([&] {  // another thread: another connection, another server thread
    other_got_it = rlock.acquire(20ms);
    try {
      rlock.release();
    } catch (const ValueError&) {
      other_release_threw = true;
    }
  });
  other.join();
  EXPECT_FALSE(other_got_it);
  EXPECT_TRUE(other_release_threw);
  rlock.release();
}

TEST(ManagerRLock, ReleaseFromAnotherProcessThrowsValueError) {
  Manager manager;
  AcquirerProxy rlock = manager.RLock();
  ASSERT_TRUE(rlock.acquire());
  auto child = test::fork_and_wait([&] {
    try {
      rlock.release();
    } catch (const ValueError&) {
      return 0;
    }
    return 1;
  });
  ASSERT_FALSE(child.timed_out);
  EXPECT_EQ(child.code, 0);
  EXPECT_TRUE(rlock.locked());
  rlock.release();
}

}  // namespace
}  // namespace mproc
