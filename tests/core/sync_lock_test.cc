// Lock and RLock (parity 4.1), plus their robustness when a holder is killed.
#include <signal.h>
#include <unistd.h>

#include <mutex>
#include <sstream>
#include <string>
#include <thread>

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

// acquire(0.5) would mean acquire(true): it must not compile.
template <class L>
concept AcceptsSeconds = requires(L& l) {
  l.acquire(0.5);
};
template <class L>
concept AcceptsDuration = requires(L& l) {
  l.acquire(500ms);
};
static_assert(!AcceptsSeconds<Lock> && !AcceptsSeconds<RLock> && !AcceptsSeconds<Semaphore> &&
              !AcceptsSeconds<Condition>);
static_assert(AcceptsDuration<Lock> && AcceptsDuration<RLock> && AcceptsDuration<Semaphore> &&
              AcceptsDuration<Condition>);

// A child that takes `lock`, signals `held`, and keeps it until `done` or for ever.
template <class L>
pid_t child_holding(L lock, Event held, Event done) {
  return fork_child([=]() mutable {
    lock.acquire();
    held.set();
    done.wait(20s);
    return 0;
  });
}

// --- Lock --------------------------------------------------------------------------------------

TEST(Lock, AcquireReturnsTrueAndThenLockedIsTrue) {
  Lock lock;
  EXPECT_FALSE(lock.locked());
  EXPECT_TRUE(lock.acquire());
  EXPECT_TRUE(lock.locked());
  lock.release();
}

TEST(Lock, NonBlockingAcquireOfAHeldLockReturnsFalse) {
  Lock lock;
  ASSERT_TRUE(lock.acquire());
  EXPECT_FALSE(lock.acquire(false));
  std::thread other([&] { EXPECT_FALSE(lock.acquire(false)); });
  other.join();
  lock.release();
}

TEST(Lock, ReleaseMakesItUnlocked) {
  Lock lock;
  ASSERT_TRUE(lock.acquire());
  lock.release();
  EXPECT_FALSE(lock.locked());
  EXPECT_TRUE(lock.acquire(false));
  lock.release();
}

TEST(Lock, ReleasingAnUnlockedLockThrowsValueError) {
  Lock lock;
  EXPECT_THROW(lock.release(), ValueError);
  lock.acquire();
  lock.release();
  EXPECT_THROW(lock.release(), ValueError);
}

TEST(Lock, LockedIsTrueInBothProcessesWhileAChildHoldsIt) {
  Lock lock;
  Event held, done;
  pid_t child = fork_child([=]() mutable {
    lock.acquire();
    if (!lock.locked()) return 1;
    held.set();
    done.wait(20s);
    lock.release();
    return 0;
  });
  ASSERT_TRUE(held.wait(10s));
  EXPECT_TRUE(lock.locked());
  done.set();
  EXPECT_EQ(wait_child(child).code, 0);
  EXPECT_FALSE(lock.locked());
}

TEST(Lock, OnlyTheHolderMayReleaseIt) {
  Lock lock;
  lock.acquire();
  std::thread other([&] { EXPECT_THROW(lock.release(), ValueError); });
  other.join();
  auto result = fork_and_wait([&] {
    try {
      lock.release();
    } catch (const ValueError&) {
      return 0;
    }
    return 1;
  });
  EXPECT_EQ(result.code, 0);
  EXPECT_TRUE(lock.locked());
  lock.release();
}

TEST(Lock, BlockingAcquireOfALockTheCallerHoldsThrowsInsteadOfDeadlocking) {
  Lock lock;
  lock.acquire();
  EXPECT_THROW(lock.acquire(), ValueError);
  lock.release();
}

TEST(Lock, TimedAcquireOfALockTheCallerHoldsReturnsFalseAfterTheTimeout) {
  Lock lock;
  lock.acquire();
  bool got = true;
  double took = test::seconds_to_run([&] { got = lock.acquire(200ms); });
  EXPECT_FALSE(got);
  EXPECT_GE(took, 0.1);
  lock.release();
}

TEST(Lock, TimedAcquireOfALockHeldElsewhereReturnsFalseAfterAboutTheTimeout) {
  Lock lock;
  Event held, done;
  pid_t child = child_holding(lock, held, done);
  ASSERT_TRUE(held.wait(10s));
  bool got = true;
  double took = test::seconds_to_run([&] { got = lock.acquire(300ms); });
  EXPECT_FALSE(got);
  EXPECT_GE(took, 0.2);
  EXPECT_LT(took, 2.0);
  EXPECT_FALSE(lock.acquire(Deadline::now()));
  done.set();
  EXPECT_EQ(wait_child(child).code, 0);
}

TEST(Lock, WaiterWakesWhenTheHolderInAnotherProcessReleases) {
  Lock lock;
  Event held;
  pid_t child = fork_child([=]() mutable {
    lock.acquire();
    held.set();
    ::usleep(200'000);
    lock.release();
    return 0;
  });
  ASSERT_TRUE(held.wait(10s));
  EXPECT_TRUE(lock.acquire(10s));
  EXPECT_FALSE(lock.previous_owner_died());
  lock.release();
  EXPECT_EQ(wait_child(child).code, 0);
}

TEST(Lock, AHolderKilledWithSigkillDoesNotFreezeTheOthers) {
  Lock lock;
  Event held, never;
  pid_t child = child_holding(lock, held, never);
  ASSERT_TRUE(held.wait(10s));
  EXPECT_FALSE(lock.acquire(false));
  ::kill(child, SIGKILL);
  EXPECT_EQ(wait_child(child).code, -SIGKILL);
  ASSERT_TRUE(lock.acquire(5s));
  EXPECT_TRUE(lock.previous_owner_died());
  lock.release();
  // The next hold is an ordinary one.
  ASSERT_TRUE(lock.acquire(false));
  EXPECT_FALSE(lock.previous_owner_died());
  lock.release();
}

TEST(Lock, AWaiterBlockedOnTheLockGetsItWhenTheHolderIsKilled) {
  Lock lock;
  Event held, never;
  pid_t holder = child_holding(lock, held, never);
  ASSERT_TRUE(held.wait(10s));
  pid_t waiter = fork_child([=]() mutable {
    if (!lock.acquire(10s)) return 1;
    return lock.previous_owner_died() ? 0 : 2;
  });
  test::settle(100ms);
  ::kill(holder, SIGKILL);
  EXPECT_EQ(wait_child(holder).code, -SIGKILL);
  EXPECT_EQ(wait_child(waiter).code, 0);
}

TEST(Lock, AThreadThatEndsHoldingItCountsAsADeadHolder) {
  Lock lock;
  std::thread holder([&] { lock.acquire(); });
  holder.join();
  ASSERT_TRUE(lock.acquire(5s));
  EXPECT_TRUE(lock.previous_owner_died());
  lock.release();
}

TEST(Lock, ProtectsAReadModifyWriteAcrossProcesses) {
  Lock lock;
  SharedInts counter;
  constexpr int kChildren = 4, kRounds = 5000;
  std::vector<pid_t> children;
  for (int c = 0; c < kChildren; ++c) {
    children.push_back(fork_child([&] {
      for (int i = 0; i < kRounds; ++i) {
        std::scoped_lock hold(lock);
        int v = counter->load(std::memory_order_relaxed);
        counter->store(v + 1, std::memory_order_relaxed);
      }
      return 0;
    }));
  }
  for (pid_t c : children) EXPECT_EQ(wait_child(c, 60s).code, 0);
  EXPECT_EQ(counter->load(), kChildren * kRounds);
}

TEST(Lock, WorksWithStandardLockGuards) {
  Lock lock;
  {
    std::lock_guard hold(lock);
    EXPECT_TRUE(lock.locked());
  }
  {
    std::unique_lock hold(lock, 100ms);
    EXPECT_TRUE(hold.owns_lock());
  }
  {
    std::unique_lock hold(lock, std::chrono::steady_clock::now() + 100ms);
    EXPECT_TRUE(hold.owns_lock());
    EXPECT_FALSE(lock.try_lock());
  }
  EXPECT_FALSE(lock.locked());
}

TEST(Lock, AttachByNameReachesTheSameLock) {
  Lock lock;
  std::string name = lock.name();
  Lock same = Lock::attach(name);
  same.acquire();
  EXPECT_TRUE(lock.locked());
  same.release();
  auto result = fork_and_wait([&] {
    Lock in_child = Lock::attach(name);
    return in_child.acquire(false) && in_child.locked() ? 0 : 1;
  });
  EXPECT_EQ(result.code, 0);
}

TEST(Lock, AttachingSomethingElseThrowsValueError) {
  Semaphore sem;
  RLock rlock;
  EXPECT_THROW((void)Lock::attach(sem.name()), ValueError);
  EXPECT_THROW((void)Lock::attach(rlock.name()), ValueError);
}

TEST(Lock, ReprShowsTheOwner) {
  Lock lock;
  EXPECT_EQ(lock.repr(), "<Lock(owner=None)>");
  lock.acquire();
  EXPECT_EQ(lock.repr(), "<Lock(owner=" + std::to_string(::getpid()) + ")>");
  lock.release();
  std::ostringstream os;
  os << lock;
  EXPECT_EQ(os.str(), "<Lock(owner=None)>");
}

// --- RLock -------------------------------------------------------------------------------------

TEST(RLock, TheOwnerCanAcquireThreeTimesAndItStaysLockedUntilTheLastRelease) {
  RLock lock;
  EXPECT_TRUE(lock.acquire());
  EXPECT_TRUE(lock.acquire());
  EXPECT_TRUE(lock.acquire(false));
  lock.release();
  EXPECT_TRUE(lock.locked());
  lock.release();
  EXPECT_TRUE(lock.locked());
  lock.release();
  EXPECT_FALSE(lock.locked());
}

TEST(RLock, OneReleaseTooManyThrowsValueError) {
  RLock lock;
  lock.acquire();
  lock.acquire();
  lock.release();
  lock.release();
  EXPECT_THROW(lock.release(), ValueError);
}

TEST(RLock, AReleaseByAThreadThatDoesNotHoldItThrowsValueError) {
  RLock lock;
  lock.acquire();
  std::thread other([&] {
    EXPECT_THROW(lock.release(), ValueError);
    EXPECT_FALSE(lock.acquire(false));
  });
  other.join();
  lock.release();
}

TEST(RLock, LockedIsVisibleAcrossProcesses) {
  RLock lock;
  Event held, done;
  pid_t child = fork_child([=]() mutable {
    lock.acquire();
    lock.acquire();
    held.set();
    done.wait(20s);
    lock.release();
    lock.release();
    return 0;
  });
  ASSERT_TRUE(held.wait(10s));
  EXPECT_TRUE(lock.locked());
  EXPECT_FALSE(lock.acquire(false));
  done.set();
  EXPECT_EQ(wait_child(child).code, 0);
  EXPECT_FALSE(lock.locked());
  EXPECT_TRUE(lock.acquire(false));
  lock.release();
}

TEST(RLock, AHolderKilledWithSigkillDoesNotFreezeTheOthers) {
  RLock lock;
  Event held, never;
  pid_t child = fork_child([=]() mutable {
    lock.acquire();
    lock.acquire();
    held.set();
    never.wait(20s);
    return 0;
  });
  ASSERT_TRUE(held.wait(10s));
  ::kill(child, SIGKILL);
  EXPECT_EQ(wait_child(child).code, -SIGKILL);
  ASSERT_TRUE(lock.acquire(5s));
  EXPECT_TRUE(lock.previous_owner_died());
  // The dead holder's depth is gone: one release frees it.
  lock.release();
  EXPECT_FALSE(lock.locked());
}

TEST(RLock, WorksAsAContextGuard) {
  RLock lock;
  std::scoped_lock outer(lock);
  std::scoped_lock inner(lock);
  EXPECT_TRUE(lock.locked());
}

TEST(RLock, ReprShowsOwnerAndDepth) {
  RLock lock;
  const std::string me = std::to_string(::getpid());
  EXPECT_EQ(lock.repr(), "<RLock(None, 0)>");
  lock.acquire();
  lock.acquire();
  lock.acquire();
  EXPECT_EQ(lock.repr(), "<RLock(" + me + ", 3)>");
  lock.release();
  lock.release();
  lock.release();

  Event held, done;
  std::string from_thread;
  std::thread other([&] {
    lock.acquire();
    from_thread = lock.repr();
    held.set();
    done.wait(10s);
    lock.release();
  });
  ASSERT_TRUE(held.wait(10s));
  EXPECT_EQ(lock.repr(), from_thread);
  EXPECT_EQ(from_thread.rfind("<RLock(" + me + "|", 0), 0u) << from_thread;
  EXPECT_NE(from_thread.find(", 1)>"), std::string::npos) << from_thread;
  done.set();
  other.join();

  Event child_held, child_done;
  pid_t child = child_holding(lock, child_held, child_done);
  ASSERT_TRUE(child_held.wait(10s));
  EXPECT_EQ(lock.repr(), "<RLock(" + std::to_string(child) + ", 1)>");
  child_done.set();
  EXPECT_EQ(wait_child(child).code, 0);
}

TEST(RLock, AttachByNameReachesTheSameLock) {
  RLock lock;
  RLock same = RLock::attach(lock.name());
  same.acquire();
  EXPECT_TRUE(lock.locked());
  EXPECT_TRUE(lock.acquire(false));  // same thread: re-entry
  lock.release();
  same.release();
  EXPECT_FALSE(lock.locked());
  EXPECT_THROW((void)RLock::attach(Lock().name()), ValueError);
}

TEST(Lock, EncodingSendsTheNameAndDecodingAttaches) {
  Lock lock;
  Lock back = decode<Lock>(encode(lock));
  EXPECT_EQ(back.name(), lock.name());
  back.acquire();
  EXPECT_TRUE(lock.locked());
  back.release();
}

TEST(RLock, EncodingSendsTheNameAndDecodingAttaches) {
  RLock lock;
  RLock back = decode<RLock>(encode(lock));
  back.acquire();
  EXPECT_TRUE(lock.locked());
  back.release();
  EXPECT_THROW((void)decode<RLock>(encode(Lock())), SerializationError);  // another type
}

}  // namespace
}  // namespace mproc
