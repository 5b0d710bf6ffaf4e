// Seed f: the duplex Pipe conversation prints its four lines in conversation order.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support.h"

namespace mproc {
namespace {

TEST(PipeDuplexExample, PrintsTheConversationInOrder) {
  auto r = test::run_program(std::string(MPROC_EXAMPLES_DIR) + "/pipe_duplex");
  ASSERT_FALSE(r.timed_out);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto lines = test::lines_of(r.out);
  const std::vector<std::string> expected = {
      "2",
      "std::pair<mproc::Connection, mproc::Connection>",
      "proc_2 received: hello",
      "proc_1 received: hello, too",
      "proc_2 received: what is your name?",
      "proc_1 received: I don't tell you!",
  };
  EXPECT_EQ(lines, expected);
}

}  // namespace
}  // namespace mproc
