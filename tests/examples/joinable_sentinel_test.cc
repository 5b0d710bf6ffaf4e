// Seed r: the consumer prints items up to the sentinel and stops; join() times out with the two
// items after the sentinel never done; an extra task_done() raises ValueError.
#include <algorithm>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support.h"

namespace mproc {
namespace {

TEST(JoinableSentinelExample, ConsumerStopsAtTheSentinelAndJoinTimesOut) {
  auto r = test::run_program(std::string(MPROC_EXAMPLES_DIR) + "/joinable_sentinel");
  ASSERT_FALSE(r.timed_out);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto lines = test::lines_of(r.out);
  // The consumer's lines, in order, among the producer's.
  std::vector<std::string> consumed;
  std::copy_if(lines.begin(), lines.end(), std::back_inserter(consumed),
               [](const std::string& l) { return l.starts_with("message ") || l == "None"; });
  EXPECT_EQ(consumed, (std::vector<std::string>{"message 0", "message 1", "message 2", "None"}))
      << r.out;
  std::vector<std::string> produced;
  std::copy_if(lines.begin(), lines.end(), std::back_inserter(produced), [](const std::string& l) {
    return l.size() == 1 || l.starts_with("sentinel") || l.starts_with("using");
  });
  EXPECT_EQ(produced, (std::vector<std::string>{"0", "1", "2", "3", "using the sentinel",
                                                "sentinel put", "4"}))
      << r.out;
  ASSERT_GE(lines.size(), 3u);
  EXPECT_EQ(lines[lines.size() - 3], "join timed out: 2 item(s) never done");
  EXPECT_EQ(lines[lines.size() - 2], "ValueError: task_done() called too many times");
  EXPECT_EQ(lines.back(), "the program really exits");
}

}  // namespace
}  // namespace mproc
