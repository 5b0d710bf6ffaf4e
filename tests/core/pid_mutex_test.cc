// The queues' mutex (core/src/pid_mutex.h): mutual exclusion across processes, deadlines, and
// the take-over from a holder that died (killed, a zombie, or its pid now someone else's).
#include "pid_mutex.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <new>
#include <thread>

#include <gtest/gtest.h>

#include "mproc/errors.h"
#include "mproc/shm.h"

#include "support.h"

namespace mproc::detail {
namespace {

using namespace std::chrono_literals;

struct Shared {
  PidMutex mutex;
  std::atomic<std::uint32_t> holding{0};  // a child says it holds the mutex
  std::int64_t counter = 0;               // changed under the mutex only
};

class PidMutexTest : public ::testing::Test {
 protected:
  SharedSegment segment = SharedSegment::create(sizeof(Shared));
  Shared& shared = *new (segment.data()) Shared;
  pid_t holder_ = 0;

  // A holder a failed assertion left running is killed and reaped here.
  void TearDown() override {
    if (holder_ > 0 && ::waitpid(holder_, nullptr, WNOHANG) == 0) {
      ::kill(holder_, SIGKILL);
      (void)test::wait_child(holder_);
    }
  }

  // A child that takes the mutex, says so, and then waits to be killed.
  pid_t start_holder() {
    pid_t pid = test::fork_child([this] {
      if (shared.mutex.lock() != LockResult::kAcquired) return 3;
      shared.holding.store(1);
      for (;;) ::pause();
    });
    const auto give_up = std::chrono::steady_clock::now() + 10s;
    while (shared.holding.load() == 0 && std::chrono::steady_clock::now() < give_up)
      std::this_thread::sleep_for(1ms);
    EXPECT_EQ(shared.holding.load(), 1u) << "the holder never took the mutex";
    holder_ = pid;
    return pid;
  }
};

TEST_F(PidMutexTest, LockTryLockAndUnlockInOneProcess) {
  EXPECT_TRUE(shared.mutex.looks_free());
  EXPECT_EQ(shared.mutex.lock(), LockResult::kAcquired);
  EXPECT_FALSE(shared.mutex.looks_free());
  EXPECT_EQ(shared.mutex.try_lock(), LockResult::kTimedOut);
  shared.mutex.unlock();
  EXPECT_EQ(shared.mutex.try_lock(), LockResult::kAcquired);
  shared.mutex.unlock();
  EXPECT_THROW(shared.mutex.unlock(), ValueError);  // not held at all
}

TEST_F(PidMutexTest, OnlyTheHoldingProcessMayUnlock) {
  ASSERT_EQ(shared.mutex.lock(), LockResult::kAcquired);
  auto child = test::fork_and_wait([this] {
    try {
      shared.mutex.unlock();
      return 1;
    } catch (const ValueError&) {
      return 0;
    }
  });
  EXPECT_EQ(child.code, 0);
  EXPECT_FALSE(shared.mutex.looks_free());
  shared.mutex.unlock();
}

TEST_F(PidMutexTest, ALockHeldByALiveProcessTimesOutAtItsDeadline) {
  pid_t holder = start_holder();
  const auto t0 = std::chrono::steady_clock::now();
  // Longer than several owner checks: a live holder is never taken over.
  EXPECT_EQ(shared.mutex.lock(Deadline::after(PidMutex::kOwnerCheckInterval * 6)),
            LockResult::kTimedOut);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, PidMutex::kOwnerCheckInterval * 6);
  ::kill(holder, SIGKILL);
  EXPECT_EQ(test::wait_child(holder).code, -SIGKILL);
}

TEST_F(PidMutexTest, AKilledAndReapedHolderIsTakenOver) {
  pid_t holder = start_holder();
  ::kill(holder, SIGKILL);
  EXPECT_EQ(test::wait_child(holder).code, -SIGKILL);
  EXPECT_EQ(shared.mutex.lock(Deadline::after(10s)), LockResult::kOwnerDied);
  shared.mutex.unlock();
  EXPECT_EQ(shared.mutex.lock(Deadline::after(10s)), LockResult::kAcquired);  // normal again
  shared.mutex.unlock();
}

TEST_F(PidMutexTest, AZombieHolderIsTakenOverByTheParentThatHasNotReapedIt) {
  pid_t holder = start_holder();
  ::kill(holder, SIGKILL);
  siginfo_t info{};
  // Wait until it is a zombie, without reaping it (WNOWAIT).
  ASSERT_EQ(::waitid(P_PID, static_cast<id_t>(holder), &info, WEXITED | WNOWAIT), 0);
  EXPECT_EQ(shared.mutex.lock(Deadline::after(10s)), LockResult::kOwnerDied);
  shared.mutex.unlock();
  EXPECT_EQ(test::wait_child(holder).code, -SIGKILL);
}

TEST_F(PidMutexTest, APidReusedByAnotherProcessDoesNotKeepTheMutexHeld) {
  // The lock word as a holder with this process's pid would leave it had it run only long
  // before this process started (tick 1 after boot): what a waiter finds when the holder died
  // and its pid went to a newer process.
  ASSERT_EQ(shared.mutex.lock(), LockResult::kAcquired);
  std::uint64_t word = 0;
  std::memcpy(&word, &shared.mutex, sizeof word);
  word = (word & 0xffffffffu) | (std::uint64_t{1} << 32);
  std::memcpy(static_cast<void*>(&shared.mutex), &word, sizeof word);
  auto child = test::fork_and_wait(
      [this] { return shared.mutex.lock(Deadline::after(10s)) == LockResult::kOwnerDied ? 0 : 1; });
  EXPECT_EQ(child.code, 0);
}

TEST_F(PidMutexTest, ProcessesContendingForItExcludeEachOther) {
  constexpr int kChildren = 3, kIncrements = 100'000;
  pid_t pids[kChildren];
  for (pid_t& pid : pids)
    pid = test::fork_child([this] {
      for (int i = 0; i < kIncrements; ++i) {
        if (shared.mutex.lock() != LockResult::kAcquired) return 1;
        // A read, a pause and a write: an increment that another holder would tear.
        std::int64_t value = shared.counter;
        if (i % 64 == 0) std::this_thread::yield();
        shared.counter = value + 1;
        shared.mutex.unlock();
      }
      return 0;
    });
  for (pid_t pid : pids) EXPECT_EQ(test::wait_child(pid, 60s).code, 0);
  EXPECT_EQ(shared.counter, std::int64_t{kChildren} * kIncrements);
}

}  // namespace
}  // namespace mproc::detail
