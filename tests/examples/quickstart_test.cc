// Runs examples/quickstart (Pool.map and apply_async over a CPU-bound job) and checks its output.
#include <regex>
#include <string>

#include <gtest/gtest.h>

#include "support.h"

namespace mproc {
namespace {

using namespace std::chrono_literals;

TEST(QuickstartExample, CountsPrimesSeriallyAndInThePoolWithTheSameResult) {
  auto run = test::run_program(std::string(MPROC_EXAMPLES_DIR) + "/quickstart", {}, 90s);
  ASSERT_FALSE(run.timed_out);
  EXPECT_EQ(run.exit_code, 0) << run.err;
  auto lines = test::lines_of(run.out);
  ASSERT_EQ(lines.size(), 3u) << run.out;
  EXPECT_EQ(lines[0], "primes below 2000000: 148933 (serial), 148933 (pool.map)");
  EXPECT_EQ(lines[1], "primes below 31250 (apply_async): 3368");
  EXPECT_TRUE(std::regex_match(
      lines[2],
      std::regex(R"(serial \d+\.\d{3} s, parallel \d+\.\d{3} s on \d+ workers: \d+\.\d\dx)")))
      << lines[2];
}

}  // namespace
}  // namespace mproc
