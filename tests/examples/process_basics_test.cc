// Runs examples/process_basics (seed m) and checks what it prints.
#include <algorithm>
#include <regex>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support.h"

namespace mproc {
namespace {

using namespace std::chrono_literals;

TEST(ProcessBasicsExample, PrintsPidNameAliveThenFiveTimesFromTheChild) {
  auto run = test::run_program(std::string(MPROC_EXAMPLES_DIR) + "/process_basics", {"0.05"}, 30s);
  ASSERT_FALSE(run.timed_out);
  EXPECT_EQ(run.exit_code, 0) << run.err;
  auto lines = test::lines_of(run.out);
  ASSERT_EQ(lines.size(), 8u) << run.out;
  // The parent's three lines come in this order; the child's may interleave with them.
  std::vector<std::string> parent;
  int times = 0;
  const std::regex time_line(R"(The time is \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4})");
  for (const auto& line : lines) {
    if (std::regex_match(line, time_line)) {
      ++times;
    } else {
      parent.push_back(line);
    }
  }
  EXPECT_EQ(times, 5) << run.out;
  ASSERT_EQ(parent.size(), 3u) << run.out;
  EXPECT_TRUE(std::regex_match(parent[0], std::regex(R"(p\.pid: [1-9]\d*)"))) << parent[0];
  EXPECT_EQ(parent[1], "p.name: Process-1");
  EXPECT_EQ(parent[2], "p.is_alive: True");
}

}  // namespace
}  // namespace mproc
