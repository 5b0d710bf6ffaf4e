// Runs examples/process_subclass (seed n) and checks what it prints.
#include <regex>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support.h"

namespace mproc {
namespace {

using namespace std::chrono_literals;

TEST(ProcessSubclassExample, RunExecutesInTheChildFiveTimes) {
  auto run =
      test::run_program(std::string(MPROC_EXAMPLES_DIR) + "/process_subclass", {"0.05"}, 30s);
  ASSERT_FALSE(run.timed_out);
  EXPECT_EQ(run.exit_code, 0) << run.err;
  auto lines = test::lines_of(run.out);
  ASSERT_EQ(lines.size(), 6u) << run.out;
  int times = 0;
  std::smatch started;
  bool have_started = false;
  const std::regex time_line(R"(the time is \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4})");
  const std::regex started_line(R"(started ClockProcess-1 \(pid (\d+)\) from pid (\d+))");
  for (const auto& line : lines) {
    if (std::regex_match(line, time_line)) {
      ++times;
    } else if (std::regex_match(line, started, started_line)) {
      have_started = true;
      EXPECT_NE(started[1].str(), started[2].str());  // run() ran in another process
    }
  }
  EXPECT_EQ(times, 5) << run.out;
  EXPECT_TRUE(have_started) << run.out;
}

}  // namespace
}  // namespace mproc
