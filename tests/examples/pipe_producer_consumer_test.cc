// Seed s: the consumer prints 0..4 in order, then sees EOFError and ends; the producer's line may
// come anywhere (the two processes race).
#include <algorithm>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support.h"

namespace mproc {
namespace {

TEST(PipeProducerConsumerExample, ConsumerPrintsEveryItemThenStopsAtEOF) {
  auto r = test::run_program(std::string(MPROC_EXAMPLES_DIR) + "/pipe_producer_consumer");
  ASSERT_FALSE(r.timed_out);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto lines = test::lines_of(r.out);
  auto main_line = std::find(lines.begin(), lines.end(), "main calls input_p.close()");
  ASSERT_NE(main_line, lines.end()) << r.out;
  lines.erase(main_line);
  const std::vector<std::string> consumer = {
      "mark calls input_p.close()", "0", "1", "2", "3", "4", "EOFError", "mark done"};
  EXPECT_EQ(lines, consumer);
}

}  // namespace
}  // namespace mproc
