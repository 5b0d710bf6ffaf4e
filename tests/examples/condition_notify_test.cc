// Runs examples/condition_notify (seed g) and checks what it prints.
#include <algorithm>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support.h"

namespace mproc {
namespace {

using namespace std::chrono_literals;

TEST(ConditionNotifyExample, BothConsumersPassTheirWaitAfterTheProducerNotifies) {
  auto run = test::run_program(std::string(MPROC_EXAMPLES_DIR) + "/condition_notify", {}, 30s);
  ASSERT_FALSE(run.timed_out);
  EXPECT_EQ(run.exit_code, 0) << run.err;
  auto lines = test::lines_of(run.out);
  ASSERT_EQ(lines.size(), 6u) << run.out;
  EXPECT_EQ(std::count(lines.begin(), lines.end(), "consumer before wait"), 2);
  EXPECT_EQ(std::count(lines.begin(), lines.end(), "consumer after wait"), 2);
  auto before = std::find(lines.begin(), lines.end(), "producer before notifyAll");
  auto after = std::find(lines.begin(), lines.end(), "producer after notifyAll");
  ASSERT_NE(before, lines.end());
  ASSERT_EQ(after, before + 1) << run.out;  // the producer holds the lock in between
  // No consumer passes its wait before the producer has notified.
  auto first_pass = std::find(lines.begin(), lines.end(), "consumer after wait");
  EXPECT_GT(first_pass, after) << run.out;
}

}  // namespace
}  // namespace mproc
