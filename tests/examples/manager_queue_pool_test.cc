// Seed k: five Pool tasks put into one Manager().Queue(); the parent then sees qsize() == 5.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support.h"

namespace mproc {
namespace {

TEST(ManagerQueuePoolExample, FivePoolTasksPutIntoTheManagersQueue) {
  auto r = test::run_program(std::string(MPROC_EXAMPLES_DIR) + "/manager_queue_pool");
  ASSERT_FALSE(r.timed_out);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> expected(5, "**********");
  expected.push_back("5");
  EXPECT_EQ(test::lines_of(r.out), expected);
}

}  // namespace
}  // namespace mproc
