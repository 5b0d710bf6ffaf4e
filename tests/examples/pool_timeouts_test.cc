// Runs examples/pool_timeouts (a map where a few inputs loop for ever, with a per-task timeout)
// and checks its output: the others complete, the runaway ones time out, the pool goes on.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support.h"

namespace mproc {
namespace {

using namespace std::chrono_literals;

TEST(PoolTimeoutsExample, RunawayInputsTimeOutAndTheOthersComplete) {
  auto run = test::run_program(std::string(MPROC_EXAMPLES_DIR) + "/pool_timeouts", {}, 60s);
  ASSERT_FALSE(run.timed_out);
  EXPECT_EQ(run.exit_code, 0) << run.err;
  const std::vector<std::string> expected{
      "collatz_steps(1) = 0",
      "collatz_steps(2) = 1",
      "collatz_steps(3) = 7",
      "collatz_steps(4) = 2",
      "collatz_steps(5) timed out after 500 ms",
      "collatz_steps(6) = 8",
      "collatz_steps(7) = 16",
      "collatz_steps(8) = 3",
      "collatz_steps(9) = 19",
      "collatz_steps(10) timed out after 500 ms",
      "collatz_steps(11) = 14",
      "collatz_steps(12) = 9",
      "12 inputs: 10 completed, 2 timed out; the pool goes on: collatz_steps(27) = 111",
  };
  EXPECT_EQ(test::lines_of(run.out), expected) << run.out;
}

}  // namespace
}  // namespace mproc
