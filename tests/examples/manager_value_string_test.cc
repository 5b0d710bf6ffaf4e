// Seed i: examples/manager_value_string prints what Python's Manager().Value example prints.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support.h"

namespace mproc {
namespace {

TEST(ManagerValueStringExample, ChildAppendsToTheSharedString) {
  auto r = test::run_program(std::string(MPROC_EXAMPLES_DIR) + "/manager_value_string");
  ASSERT_FALSE(r.timed_out);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(test::lines_of(r.out), std::vector<std::string>{"Hello, World!"});
}

}  // namespace
}  // namespace mproc
