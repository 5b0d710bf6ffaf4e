// Seed b: the heterogeneous list sent by the child arrives intact and prints as Python prints it.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support.h"

namespace mproc {
namespace {

TEST(PipeSendListExample, TheHeterogeneousListArrivesIntact) {
  auto r = test::run_program(std::string(MPROC_EXAMPLES_DIR) + "/pipe_send_list");
  ASSERT_FALSE(r.timed_out);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(test::lines_of(r.out), std::vector<std::string>{"[42, None, 'hello']"});
}

}  // namespace
}  // namespace mproc
