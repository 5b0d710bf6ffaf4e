// Seed k: five Pool tasks put into one Manager().Queue(); the parent then sees qsize() == 5.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support.h"

namespace mproc {
namespace {

// Run under each start method (of the pool's workers): the program does not change.
class ManagerQueuePoolExample : public testing::TestWithParam<std::string> {};

TEST_P(ManagerQueuePoolExample, FivePoolTasksPutIntoTheManagersQueue) {
  auto r = test::run_program_with_method(std::string(MPROC_EXAMPLES_DIR) + "/manager_queue_pool",
                                         GetParam());
  ASSERT_FALSE(r.timed_out);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> expected(5, "**********");
  expected.push_back("5");
  EXPECT_EQ(test::lines_of(r.out), expected);
}

INSTANTIATE_TEST_SUITE_P(StartMethods, ManagerQueuePoolExample,
                         testing::ValuesIn(test::kStartMethods));

}  // namespace
}  // namespace mproc
