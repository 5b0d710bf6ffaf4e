// Seed h: examples/value_array_negate prints what Python's shared-number example prints.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support.h"

namespace mproc {
namespace {

TEST(ValueArrayNegateExample, ParentSeesTheChildsDoubleAndNegatedArray) {
  auto run = test::run_program(std::string(MPROC_EXAMPLES_DIR) + "/value_array_negate");
  ASSERT_FALSE(run.timed_out);
  EXPECT_EQ(run.exit_code, 0) << run.err;
  std::vector<std::string> expected{"子进程改变的n 3.1415927"};
  for (int i = 0; i < 10; ++i) expected.push_back("子进程改变的元素:  " + std::to_string(-i));
  expected.push_back("3.1415927");
  expected.push_back("[0, -1, -2, -3, -4, -5, -6, -7, -8, -9]");
  EXPECT_EQ(test::lines_of(run.out), expected);
}

}  // namespace
}  // namespace mproc
