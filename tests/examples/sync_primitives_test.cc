// Runs examples/sync_primitives (seed o) and checks what it prints.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support.h"

namespace mproc {
namespace {

using namespace std::chrono_literals;

TEST(SyncPrimitivesExample, EachPrimitiveWorksAcrossProcesses) {
  auto run = test::run_program(std::string(MPROC_EXAMPLES_DIR) + "/sync_primitives", {}, 30s);
  ASSERT_FALSE(run.timed_out);
  EXPECT_EQ(run.exit_code, 0) << run.err;
  std::vector<std::string> expected{
      "Lock: 4 processes x 1000 increments -> 4000",
      "RLock: entered 2 times by one process, then free: yes",
      "Event: the child saw the event set by the parent",
      "Condition: the consumer got 42",
      "Barrier: 3 processes passed together, the action ran 1 time(s)",
  };
  auto lines = test::lines_of(run.out);
  ASSERT_EQ(lines.size(), 6u) << run.out;
  EXPECT_EQ(lines[0], expected[0]);
  EXPECT_EQ(lines[1], expected[1]);
  // 1 or 2, depending on how the 5 workers happen to overlap; never more.
  EXPECT_TRUE(lines[2] == "Semaphore(2): 5 processes, at most 2 inside at once" ||
              lines[2] == "Semaphore(2): 5 processes, at most 1 inside at once")
      << lines[2];
  EXPECT_EQ(lines[3], expected[2]);
  EXPECT_EQ(lines[4], expected[3]);
  EXPECT_EQ(lines[5], expected[4]);
}

}  // namespace
}  // namespace mproc
