// Seed t: the server child returns 9 and Mark大帅哥, then sees EOFError when the parent closes.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support.h"

namespace mproc {
namespace {

TEST(PipeServerExample, ReturnsTheSumsThenEndsAtEOF) {
  auto r = test::run_program(std::string(MPROC_EXAMPLES_DIR) + "/pipe_server");
  ASSERT_FALSE(r.timed_out);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const std::vector<std::string> expected = {"9", "Mark大帅哥", "EOFError", "mark done"};
  EXPECT_EQ(test::lines_of(r.out), expected);
}

}  // namespace
}  // namespace mproc
