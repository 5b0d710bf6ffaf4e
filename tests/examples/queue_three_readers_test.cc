// Seed q: each of the three readers gets one message; a put after close() raises ValueError.
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "support.h"

namespace mproc {
namespace {

TEST(QueueThreeReadersExample, EachReaderGetsOneMessageAndPutAfterCloseFails) {
  auto r = test::run_program(std::string(MPROC_EXAMPLES_DIR) + "/queue_three_readers");
  ASSERT_FALSE(r.timed_out);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::set<std::string> messages, pids;
  bool put_failed = false, main_done = false;
  for (const auto& line : test::lines_of(r.out)) {
    if (line.starts_with("process ")) {
      auto colon = line.find(" got: ");
      ASSERT_NE(colon, std::string::npos) << line;
      pids.insert(line.substr(8, colon - 8));
      messages.insert(line.substr(colon + 6));
    }
    if (line.starts_with("put after close: ValueError: ")) put_failed = true;
    if (line == "main done") main_done = true;
  }
  EXPECT_EQ(messages, (std::set<std::string>{"message 1", "message 2", "message 3"})) << r.out;
  EXPECT_EQ(pids.size(), 3u) << r.out;
  EXPECT_TRUE(put_failed) << r.out;
  EXPECT_TRUE(main_done) << r.out;
}

}  // namespace
}  // namespace mproc
