// Seed a: ten results (any order), every consumer says it is exiting, and the program ends.
#include <algorithm>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "mproc/process.h"

#include "support.h"

namespace mproc {
namespace {

// Run under each start method: the program does not change.
class ConsumersJoinableQueueExample : public testing::TestWithParam<std::string> {};

TEST_P(ConsumersJoinableQueueExample, TenResultsAndEveryConsumerExits) {
  auto r = test::run_program_with_method(
      std::string(MPROC_EXAMPLES_DIR) + "/consumers_joinable_queue", GetParam());
  ASSERT_FALSE(r.timed_out);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto lines = test::lines_of(r.out);
  const int consumers = cpu_count();
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines.front(), "Creating " + std::to_string(consumers) + " consumers");
  std::multiset<std::string> results;
  int exiting = 0, took = 0;
  for (const auto& line : lines) {
    if (line.starts_with("Result: ")) results.insert(line);
    if (line.ends_with(": Exiting")) ++exiting;
    if (line.find(": ") != std::string::npos && line.find(" * ") != std::string::npos &&
        !line.starts_with("Result: "))
      ++took;
  }
  std::multiset<std::string> expected;
  for (int i = 0; i < 10; ++i)
    expected.insert("Result: " + std::to_string(i) + " * " + std::to_string(i) + " = " +
                    std::to_string(i * i));
  EXPECT_EQ(results, expected) << r.out;
  EXPECT_EQ(exiting, consumers) << r.out;
  EXPECT_EQ(took, 10) << r.out;
  // The results are printed after tasks.join(), so after every task was taken.
  auto first_result = std::find_if(lines.begin(), lines.end(),
                                   [](const std::string& l) { return l.starts_with("Result: "); });
  EXPECT_EQ(std::count_if(first_result, lines.end(),
                          [](const std::string& l) { return l.starts_with("Result: "); }),
            10);
}

INSTANTIATE_TEST_SUITE_P(StartMethods, ConsumersJoinableQueueExample,
                         testing::ValuesIn(test::kStartMethods));

}  // namespace
}  // namespace mproc
