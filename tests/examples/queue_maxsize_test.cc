// Seed p: a Queue(3) refuses a 4th item (Full with a timeout or at once), gives items back in
// order, and raises Empty once drained.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support.h"

namespace mproc {
namespace {

TEST(QueueMaxsizeExample, FourthPutRaisesFullAndEmptyGetRaisesEmpty) {
  std::string out;
  double took = test::seconds_to_run([&] {
    auto r = test::run_program(std::string(MPROC_EXAMPLES_DIR) + "/queue_maxsize");
    ASSERT_FALSE(r.timed_out);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    out = r.out;
  });
  const std::vector<std::string> expected = {
      "qsize=3 empty=0 full=1",  "before the 4th put",
      "put(timeout=0.5): Full",  "put_nowait: Full",
      "get: message 1",          "get_nowait: message 2",
      "get(True, 1): message 3", "get(timeout=1s): message 4",
      "qsize=0 empty=1 full=0",  "get(timeout=0.5): Empty",
      "get_nowait: Empty"};
  EXPECT_EQ(test::lines_of(out), expected);
  EXPECT_GE(took, 0.9);  // the two 0.5 s timeouts
}

}  // namespace
}  // namespace mproc
