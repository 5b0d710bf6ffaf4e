// Seed c: examples/value_array prints what Python's Value + Array example prints.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support.h"

namespace mproc {
namespace {

// Run under each start method: the program does not change.
class ValueArrayExample : public testing::TestWithParam<std::string> {};

TEST_P(ValueArrayExample, TwoChildrenInTurnChangeTheSharedValueAndArray) {
  auto run =
      test::run_program_with_method(std::string(MPROC_EXAMPLES_DIR) + "/value_array", GetParam());
  ASSERT_FALSE(run.timed_out);
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(test::lines_of(run.out),
            (std::vector<std::string>{"2", "[0, 10, 20, 30, 40, 50, 60, 70, 80, 90]", "3",
                                      "[0, 100, 200, 300, 400, 500, 600, 700, 800, 900]"}));
}

INSTANTIATE_TEST_SUITE_P(StartMethods, ValueArrayExample, testing::ValuesIn(test::kStartMethods));

}  // namespace
}  // namespace mproc
