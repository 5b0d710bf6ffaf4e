// Barrier (parity 4.5: N = 5 parties), with processes as the parties.
#include <signal.h>
#include <unistd.h>

#include <functional>
#include <sstream>
#include <stdexcept>
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

constexpr int kN = 5;

// Runs body(i) in `n` child processes and expects each to exit 0.
void run_parties(int n, const std::function<int(int)>& body,
                 std::chrono::milliseconds timeout = 30s) {
  std::vector<pid_t> children;
  for (int i = 0; i < n; ++i) children.push_back(fork_child([&, i] { return body(i); }));
  for (std::size_t i = 0; i < children.size(); ++i) {
    EXPECT_EQ(wait_child(children[i], timeout).code, 0) << "party " << i;
  }
}

// 0 when wait() throws BrokenBarrierError, 1 when it returns.
int expect_broken(Barrier& barrier, const Deadline& deadline = Deadline::never()) {
  try {
    (void)barrier.wait(deadline);
  } catch (const BrokenBarrierError&) {
    return 0;
  }
  return 1;
}

TEST(Barrier, NPartiesPassTogetherAndLeaveItEmptyAndUnbroken) {
  Barrier barrier(kN);
  SharedInts arrived;
  run_parties(kN, [&](int) {
    arrived->fetch_add(1);
    barrier.wait(10s);
    return arrived->load() == kN ? 0 : 1;  // nobody passes before all arrived
  });
  EXPECT_EQ(barrier.n_waiting(), 0u);
  EXPECT_FALSE(barrier.broken());
}

TEST(Barrier, TenConsecutivePassesReuseIt) {
  Barrier barrier(kN);
  SharedInts arrived;
  run_parties(kN, [&](int) {
    for (int pass = 1; pass <= 10; ++pass) {
      arrived->fetch_add(1);
      barrier.wait(10s);
      if (arrived->load() < pass * kN) return 1;
      barrier.wait(10s);  // nobody starts the next pass before all checked this one
    }
    return 0;
  });
  EXPECT_EQ(arrived->load(), 10 * kN);
  EXPECT_EQ(barrier.n_waiting(), 0u);
}

TEST(Barrier, WaitReturnsADistinctIndexAndExactlyOnePartyGetsZero) {
  Barrier barrier(kN);
  SharedInts seen(kN);
  run_parties(kN, [&](int) {
    int index = barrier.wait(10s);
    if (index < 0 || index >= kN) return 1;
    seen.at(index).fetch_add(1);
    return 0;
  });
  for (int i = 0; i < kN; ++i) EXPECT_EQ(seen.at(i).load(), 1) << "index " << i;
}

TEST(Barrier, TheActionRunsOncePerPassBeforeAnyoneIsReleased) {
  SharedInts ran;
  Barrier barrier(kN, [&] { ran->fetch_add(1); });
  run_parties(kN, [&](int) {
    for (int pass = 1; pass <= 3; ++pass) {
      barrier.wait(10s);
      if (ran->load() < pass) return 1;
      barrier.wait(10s);
    }
    return 0;
  });
  EXPECT_EQ(ran->load(), 6);  // 2 waits per pass
}

TEST(Barrier, AnActionThatThrowsBreaksItAndReachesTheLastParty) {
  Barrier barrier(2, [] { throw std::runtime_error("action failed"); });
  pid_t child = fork_child([&] { return expect_broken(barrier, Deadline::after(10s)); });
  ASSERT_TRUE(eventually([&] { return barrier.n_waiting() == 1; }));
  EXPECT_THROW(barrier.wait(10s), std::runtime_error);
  EXPECT_EQ(wait_child(child).code, 0);
  EXPECT_TRUE(barrier.broken());
}

TEST(Barrier, AbortBreaksItForTheOtherWaiters) {
  Barrier barrier(kN);
  std::vector<pid_t> children;
  for (int i = 0; i < kN - 1; ++i) {
    children.push_back(fork_child([&] { return expect_broken(barrier, Deadline::after(10s)); }));
  }
  ASSERT_TRUE(eventually([&] { return barrier.n_waiting() == kN - 1; }));
  barrier.abort();
  for (pid_t c : children) EXPECT_EQ(wait_child(c).code, 0);
  EXPECT_TRUE(barrier.broken());
  EXPECT_THROW(barrier.wait(1s), BrokenBarrierError);
}

TEST(Barrier, ResetWhileNMinus1WaitBreaksThemAndThenAllNCanPass) {
  Barrier barrier(kN);
  std::vector<pid_t> children;
  for (int i = 0; i < kN - 1; ++i) {
    children.push_back(fork_child([&] { return expect_broken(barrier, Deadline::after(10s)); }));
  }
  ASSERT_TRUE(eventually([&] { return barrier.n_waiting() == kN - 1; }));
  barrier.reset();
  for (pid_t c : children) EXPECT_EQ(wait_child(c).code, 0);
  EXPECT_FALSE(barrier.broken());
  run_parties(kN, [&](int) { return barrier.wait(10s) >= 0 ? 0 : 1; });
}

TEST(Barrier, ABrokenBarrierIsUsableAgainAfterReset) {
  Barrier barrier(kN);
  barrier.abort();
  EXPECT_TRUE(barrier.broken());
  EXPECT_THROW(barrier.wait(1s), BrokenBarrierError);
  barrier.reset();
  EXPECT_FALSE(barrier.broken());
  run_parties(kN, [&](int) { return barrier.wait(10s) >= 0 ? 0 : 1; });
}

TEST(Barrier, ATimeoutWhileOnePartyIsLateBreaksItForAllParties) {
  Barrier barrier(kN);
  run_parties(kN, [&](int i) {
    if (i == kN - 1) ::usleep(1'000'000);
    return expect_broken(barrier, Deadline::after(500ms));
  });
  EXPECT_TRUE(barrier.broken());
}

TEST(Barrier, TheDefaultTimeoutAppliesToWait) {
  Barrier barrier(kN, {}, 500ms);
  run_parties(kN, [&](int i) {
    if (i == kN - 1) ::usleep(1'000'000);
    try {
      (void)barrier.wait();
    } catch (const BrokenBarrierError&) {
      return 0;
    }
    return 1;
  });
  EXPECT_TRUE(barrier.broken());
}

TEST(Barrier, TheDefaultTimeoutEndsAWaitOnTime) {
  Barrier barrier(2, {}, 300ms);
  double took = test::seconds_to_run([&] { EXPECT_THROW(barrier.wait(), BrokenBarrierError); });
  EXPECT_GE(took, 0.2);
  EXPECT_LT(took, 2.0);
}

TEST(Barrier, ASinglePartyReturnsAtOnceRepeatedly) {
  Barrier barrier(1);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(barrier.wait(), 0);
}

TEST(Barrier, ZeroPartiesIsAValueError) { EXPECT_THROW(Barrier(0), ValueError); }

TEST(Barrier, ThreadsAndProcessesCanBePartiesOfOnePass) {
  Barrier barrier(4);
  pid_t child = fork_child([&] { return barrier.wait(10s) >= 0 ? 0 : 1; });
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i) threads.emplace_back([&] { (void)barrier.wait(10s); });
  (void)barrier.wait(10s);
  for (auto& t : threads) t.join();
  EXPECT_EQ(wait_child(child).code, 0);
}

TEST(Barrier, AThousandPassesKeepThePartiesInStep) {
  Barrier barrier(kN);
  SharedInts pass_of(kN);
  run_parties(
      kN,
      [&](int me) {
        for (int pass = 1; pass <= 1000; ++pass) {
          pass_of.at(me).store(pass);
          barrier.wait(20s);
          for (int other = 0; other < kN; ++other) {
            if (pass_of.at(other).load() != pass) return 1;
          }
          barrier.wait(20s);
        }
        return 0;
      },
      60s);
}

TEST(Barrier, AttachByNameReachesTheSameBarrier) {
  Barrier barrier(2, {}, 10s);
  SharedInts ran;
  pid_t child = fork_child([&, name = barrier.name()] {
    Barrier same = Barrier::attach(name, [&] { ran->fetch_add(1); });
    if (same.parties() != 2) return 1;
    return same.wait() >= 0 ? 0 : 1;
  });
  ASSERT_TRUE(eventually([&] { return barrier.n_waiting() == 1; }));
  (void)barrier.wait();  // we arrive last: our (empty) action runs, not the child's
  EXPECT_EQ(wait_child(child).code, 0);
  EXPECT_EQ(ran->load(), 0);
  EXPECT_THROW((void)Barrier::attach(Event().name()), ValueError);
}

TEST(Barrier, APartyKilledWhileWaitingLetsTheOthersLeaveByTheirTimeout) {
  Barrier barrier(3);
  pid_t doomed = fork_child([&] { return barrier.wait(20s) >= 0 ? 0 : 1; });
  ASSERT_TRUE(eventually([&] { return barrier.n_waiting() == 1; }));
  ::kill(doomed, SIGKILL);
  EXPECT_EQ(wait_child(doomed).code, -SIGKILL);
  pid_t other = fork_child([&] { return expect_broken(barrier, Deadline::after(300ms)); });
  EXPECT_EQ(wait_child(other).code, 0);
  EXPECT_TRUE(barrier.broken());
}

TEST(Barrier, AProcessKilledInsideTheActionBreaksIt) {
  Barrier barrier(2, [] { ::raise(SIGKILL); });
  pid_t waiter = fork_child([&] { return expect_broken(barrier, Deadline::after(500ms)); });
  ASSERT_TRUE(eventually([&] { return barrier.n_waiting() == 1; }));
  pid_t last = fork_child([&] { return barrier.wait(10s) >= 0 ? 1 : 2; });
  EXPECT_EQ(wait_child(last).code, -SIGKILL);
  EXPECT_EQ(wait_child(waiter).code, 0);
  EXPECT_TRUE(barrier.broken());
}

TEST(Barrier, ReprShowsWaitersOrBroken) {
  Barrier barrier(kN);
  std::string r = barrier.repr();
  EXPECT_EQ(r.rfind("<Barrier at 0x", 0), 0u) << r;
  EXPECT_EQ(r.substr(r.size() - 14), ": waiters=0/5>") << r;
  barrier.abort();
  std::ostringstream os;
  os << barrier;
  EXPECT_EQ(os.str().substr(os.str().size() - 9), ": broken>") << os.str();
}

TEST(Barrier, EncodingSendsTheNameAndDecodingAttaches) {
  Barrier barrier(2);
  Barrier back(1);
  decode_into(encode(barrier), back);
  EXPECT_EQ(back.parties(), 2u);
  back.abort();
  EXPECT_TRUE(barrier.broken());
}

TEST(Barrier, AHandleDecodedIntoKeepsItsOwnAction) {
  Barrier barrier(1);  // one party: every wait is a whole pass, run by the waiting handle
  int runs = 0;
  Barrier back(3, [&] { ++runs; });
  decode_into(encode(barrier), back);
  EXPECT_EQ(back.parties(), 1u);
  (void)back.wait(5s);
  EXPECT_EQ(runs, 1);
  (void)barrier.wait(5s);  // the sender's handle has no action
  EXPECT_EQ(runs, 1);
}

}  // namespace
}  // namespace mproc
