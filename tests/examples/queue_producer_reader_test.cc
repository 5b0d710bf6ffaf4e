// Seed d: A, B and C are put and read back in order, then "Done!".
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support.h"

namespace mproc {
namespace {

TEST(QueueProducerReaderExample, ReaderGetsABCInOrder) {
  auto r = test::run_program(std::string(MPROC_EXAMPLES_DIR) + "/queue_producer_reader");
  ASSERT_FALSE(r.timed_out);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const std::vector<std::string> expected = {"Put A to queue...",
                                             "Put B to queue...",
                                             "Put C to queue...",
                                             "Get A from queue.",
                                             "Get B from queue.",
                                             "Get C from queue.",
                                             "Done!"};
  EXPECT_EQ(test::lines_of(r.out), expected);
}

}  // namespace
}  // namespace mproc
