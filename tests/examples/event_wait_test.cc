// Runs examples/event_wait (seed e) and checks what it prints.
#include <algorithm>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support.h"

namespace mproc {
namespace {

using namespace std::chrono_literals;

std::ptrdiff_t position(const std::vector<std::string>& lines, const std::string& line) {
  auto it = std::find(lines.begin(), lines.end(), line);
  return it == lines.end() ? -1 : it - lines.begin();
}

// Run under each start method: the program does not change.
class EventWaitExample : public testing::TestWithParam<std::string> {};

TEST_P(EventWaitExample, TheTimedWaiterGivesUpUnsetThenTheBlockedOneWakesSet) {
  test::ProgramOutput run;
  double took = test::seconds_to_run([&] {
    run = test::run_program_with_method(std::string(MPROC_EXAMPLES_DIR) + "/event_wait", GetParam(),
                                        30s);
  });
  ASSERT_FALSE(run.timed_out);
  EXPECT_EQ(run.exit_code, 0) << run.err;
  auto lines = test::lines_of(run.out);
  ASSERT_EQ(lines.size(), 7u) << run.out;
  EXPECT_EQ(lines[0], "begin,e.is_set() False");
  const auto timed = position(lines, "wait_for_event_timeout: e.is_set()-> False");
  const auto blocked = position(lines, "wait_for_event: e.is_set()-> True");
  ASSERT_GE(timed, 0) << run.out;
  ASSERT_GE(blocked, 0) << run.out;
  EXPECT_LT(timed, blocked) << run.out;
  EXPECT_LT(position(lines, "wait_for_event_timeout: starting"), timed);
  EXPECT_LT(position(lines, "wait_for_event: starting"), blocked);
  EXPECT_GE(position(lines, "main: waiting before calling Event.set()"), 1);
  EXPECT_EQ(lines.back(), "main: event is set");
  EXPECT_GE(took, 2.9);  // the parent sleeps 3 s; the timed waiter gives up after 2 s
}

INSTANTIATE_TEST_SUITE_P(StartMethods, EventWaitExample, testing::ValuesIn(test::kStartMethods));

}  // namespace
}  // namespace mproc
