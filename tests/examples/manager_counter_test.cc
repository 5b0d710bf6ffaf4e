// Seed l: five Pool tasks of 50 increments each on one registered Counter served by a BaseManager
// end at 250; each task reports its start and its end.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support.h"

namespace mproc {
namespace {

using namespace std::chrono_literals;

// Run under each start method (of the pool's workers): the program does not change.
class ManagerCounterExample : public testing::TestWithParam<std::string> {};

TEST_P(ManagerCounterExample, FiveTasksOfFiftyIncrementsEndAt250) {
  auto r = test::run_program_with_method(std::string(MPROC_EXAMPLES_DIR) + "/manager_counter",
                                         GetParam(), 60s);
  ASSERT_FALSE(r.timed_out);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto lines = test::lines_of(r.out);
  ASSERT_GE(lines.size(), 4u) << r.out;
  EXPECT_TRUE(lines.front().starts_with("Parent process ")) << r.out;
  EXPECT_EQ(lines[lines.size() - 2], "All subprocesses done.");
  EXPECT_EQ(lines.back(), "250");
  for (int i = 0; i < 5; ++i) {
    const std::string task = std::to_string(i);
    int runs = 0, ends = 0;
    for (const auto& line : lines) {
      runs += line.starts_with("Run task " + task + " (") ? 1 : 0;
      ends += line.starts_with("Task " + task + " runs ") ? 1 : 0;
    }
    EXPECT_EQ(runs, 1) << r.out;
    EXPECT_EQ(ends, 1) << r.out;
  }
}

INSTANTIATE_TEST_SUITE_P(StartMethods, ManagerCounterExample,
                         testing::ValuesIn(test::kStartMethods));

}  // namespace
}  // namespace mproc
