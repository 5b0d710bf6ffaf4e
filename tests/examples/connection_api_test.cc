// Seed u: every Connection method behaves as the seed describes.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support.h"

namespace mproc {
namespace {

TEST(ConnectionApiExample, EveryMethodBehavesAsDescribed) {
  auto r = test::run_program(std::string(MPROC_EXAMPLES_DIR) + "/connection_api");
  ASSERT_FALSE(r.timed_out);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const std::vector<std::string> expected = {
      "fileno() is a descriptor: True",
      "poll(): False",
      "poll(0.3): False after at least 0.2 s: True",
      "poll(None): True",
      "send_bytes(b'hello world', 6, 5) -> recv_bytes(): world",
      "recv_bytes_into(arr2) -> 20 bytes: 0 1 2 3 4 0 0 0 0 0",
      "recv_bytes_into(6 free bytes): BufferTooShort holding 'a message too long for a small "
      "buffer'",
      "recv(): an object",
      "recv_bytes(maxlength=4) on 10 bytes: error (message too long), readable now: False",
      "closed after close(): True",
      "poll() after close(): error (handle is closed)",
  };
  EXPECT_EQ(test::lines_of(r.out), expected);
}

}  // namespace
}  // namespace mproc
