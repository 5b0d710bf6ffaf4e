// Event (parity 4.4), and its robustness when a waiter is killed.
#include <signal.h>
#include <unistd.h>

#include <sstream>
#include <string>
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

TEST(Event, IsInitiallyUnsetAndAZeroWaitReturnsFalseAtOnce) {
  Event event;
  EXPECT_FALSE(event.is_set());
  bool got = true;
  double took = test::seconds_to_run([&] { got = event.wait(0s); });
  EXPECT_FALSE(got);
  EXPECT_LT(took, 0.05);
}

TEST(Event, ATimedWaitOnAnUnsetEventReturnsFalseAfterAboutTheTimeout) {
  Event event;
  bool got = true;
  double took = test::seconds_to_run([&] { got = event.wait(300ms); });
  EXPECT_FALSE(got);
  EXPECT_GE(took, 0.2);
  EXPECT_LT(took, 2.0);
}

TEST(Event, AfterSetWaitsReturnTrueImmediately) {
  Event event;
  event.set();
  EXPECT_TRUE(event.is_set());
  double took = test::seconds_to_run([&] {
    EXPECT_TRUE(event.wait());
    EXPECT_TRUE(event.wait(1s));
    EXPECT_TRUE(event.wait(0s));
  });
  EXPECT_LT(took, 0.05);
}

TEST(Event, AfterClearAChildSettingItLaterWakesTheWaiter) {
  Event event;
  event.set();
  event.clear();
  EXPECT_FALSE(event.is_set());
  pid_t child = fork_child([=]() mutable {
    ::usleep(200'000);
    event.set();
    return 0;
  });
  bool got = false;
  double took = test::seconds_to_run([&] { got = event.wait(); });
  EXPECT_TRUE(got);
  EXPECT_GE(took, 0.1);
  EXPECT_TRUE(event.is_set());
  EXPECT_EQ(wait_child(child).code, 0);
}

TEST(Event, SetWakesEveryWaiter) {
  Event event;
  SharedInts woken;
  std::vector<pid_t> children;
  for (int i = 0; i < 3; ++i) {
    children.push_back(fork_child([&] {
      if (!event.wait(10s)) return 1;
      woken->fetch_add(1);
      return 0;
    }));
  }
  test::settle(100ms);
  EXPECT_EQ(woken->load(), 0);
  event.set();
  for (pid_t c : children) EXPECT_EQ(wait_child(c).code, 0);
  EXPECT_EQ(woken->load(), 3);
}

TEST(Event, AWaiterAsleepThroughSetThenClearStillReturnsTrue) {
  Event event;
  Event waiting;
  pid_t child = fork_child([=]() mutable {
    waiting.set();
    return event.wait(10s) ? 0 : 1;
  });
  ASSERT_TRUE(waiting.wait(10s));
  test::settle(100ms);
  event.set();
  event.clear();
  EXPECT_EQ(wait_child(child).code, 0);
  EXPECT_FALSE(event.is_set());
}

TEST(Event, AWaiterKilledWithSigkillDoesNotBreakTheOthers) {
  Event event;
  pid_t doomed = fork_child([=]() mutable { return event.wait(20s) ? 0 : 1; });
  pid_t survivor = fork_child([=]() mutable { return event.wait(10s) ? 0 : 1; });
  test::settle(100ms);
  ::kill(doomed, SIGKILL);
  EXPECT_EQ(wait_child(doomed).code, -SIGKILL);
  event.set();
  EXPECT_EQ(wait_child(survivor).code, 0);
}

TEST(Event, AttachByNameReachesTheSameFlag) {
  Event event;
  auto result = fork_and_wait([name = event.name()] {
    Event same = Event::attach(name);
    same.set();
    return 0;
  });
  EXPECT_EQ(result.code, 0);
  EXPECT_TRUE(event.is_set());
  EXPECT_THROW((void)Event::attach(Lock().name()), ValueError);
}

TEST(Event, ReprSaysWhetherItIsSet) {
  Event event;
  std::string unset = event.repr();
  EXPECT_EQ(unset.rfind("<Event at 0x", 0), 0u) << unset;
  EXPECT_EQ(unset.substr(unset.size() - 7), " unset>") << unset;
  event.set();
  std::ostringstream os;
  os << event;
  EXPECT_EQ(os.str().substr(os.str().size() - 5), " set>") << os.str();
  EXPECT_EQ(os.str().substr(0, os.str().size() - 5), unset.substr(0, unset.size() - 7));
}

TEST(Event, EncodingSendsTheNameAndDecodingAttaches) {
  Event event;
  Event back = decode<Event>(encode(event));
  back.set();
  EXPECT_TRUE(event.is_set());
}

}  // namespace
}  // namespace mproc
