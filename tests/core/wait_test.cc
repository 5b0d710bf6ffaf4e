// mproc::wait over file descriptors and process sentinels: parity 6.6 (TestWait) for fds.
#include "mproc/wait.h"

#include <fcntl.h>
#include <unistd.h>

#include <map>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "mproc/errors.h"
#include "mproc/process.h"

#include "support.h"

namespace mproc {
namespace {

using namespace std::chrono_literals;
using test::seconds_to_run;

struct RawPipe {
  int r = -1, w = -1;
  RawPipe() {
    int fds[2];
    EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    r = fds[0];
    w = fds[1];
  }
  ~RawPipe() {
    if (r >= 0) ::close(r);
    if (w >= 0) ::close(w);
  }
  RawPipe(const RawPipe&) = delete;
  RawPipe& operator=(const RawPipe&) = delete;
};

TEST(Wait, ReturnsNothingAfterTheTimeoutAndNoEarlier) {
  RawPipe a, b;
  std::vector<int> ready{-2};
  double took = seconds_to_run([&] { ready = wait({a.r, b.r}, 500ms); });
  EXPECT_TRUE(ready.empty());
  EXPECT_GE(took, 0.4);
  EXPECT_LT(took, 3.0);
}

TEST(Wait, ReportsTheReadyOnesInTheOrderGiven) {
  RawPipe a, b, c;
  ASSERT_EQ(::write(c.w, "x", 1), 1);
  ASSERT_EQ(::write(a.w, "x", 1), 1);
  std::vector<int> fds{a.r, b.r, c.r};
  EXPECT_EQ(wait(fds, 1s), (std::vector<int>{a.r, c.r}));
}

TEST(Wait, NegativeOrZeroTimeoutReturnsAtOnce) {
  RawPipe a;
  double took = seconds_to_run([&] {
    EXPECT_TRUE(wait({a.r}, -1s).empty());
    EXPECT_TRUE(wait({a.r}, Deadline::now()).empty());
  });
  EXPECT_LT(took, 0.1);
}

TEST(Wait, APipeWhoseWritersAreClosedIsReady) {
  RawPipe a;
  ::close(std::exchange(a.w, -1));
  EXPECT_EQ(wait({a.r}, 1s), std::vector<int>{a.r});
}

TEST(Wait, ANegativeFdThrowsValueErrorAndAClosedOneSystemError) {
  EXPECT_THROW((void)wait({-1}, 0s), ValueError);
  int fd = -1;
  {
    RawPipe a;
    fd = a.r;
  }
  EXPECT_THROW((void)wait({fd}, 0s), std::system_error);
}

// test_wait_integer: sentinels mixed with pipes; a ready pipe is reported at once, the sentinel
// when its process exits.
TEST(Wait, ProcessSentinelsMixWithPipes) {
  RawPipe data;
  Process p([] { ::usleep(1'000'000); });
  p.start();
  ASSERT_EQ(::write(data.w, "x", 1), 1);
  std::vector<int> ready;
  double took = seconds_to_run([&] { ready = wait({p.sentinel(), data.r}, 20s); });
  EXPECT_EQ(ready, std::vector<int>{data.r});
  EXPECT_LT(took, 0.4);
  char c;
  ASSERT_EQ(::read(data.r, &c, 1), 1);
  took = seconds_to_run([&] { ready = wait({p.sentinel(), data.r}, 20s); });
  EXPECT_EQ(ready, std::vector<int>{p.sentinel()});
  EXPECT_GE(took, 0.5);
  EXPECT_LT(took, 5.0);
  p.join();
  EXPECT_EQ(p.exitcode(), 0);
}

// test_wait: four writers, ten messages each, multiplexed until every pipe reports EOF.
TEST(Wait, MultiplexesSeveralPipesUntilEachReportsEof) {
  constexpr int kWriters = 4, kMessages = 10;
  std::vector<int> readers;
  std::vector<Process> procs;
  for (int i = 0; i < kWriters; ++i) {
    int fds[2];
    ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    procs.emplace_back(
        [fds, i] {
          ::close(fds[0]);
          for (int m = 0; m < kMessages; ++m) {
            char byte = static_cast<char>('a' + i);
            if (::write(fds[1], &byte, 1) != 1) std::_Exit(2);
            ::usleep(1000);
          }
        },
        ProcessOptions{});
    procs.back().start();
    ::close(fds[1]);
    readers.push_back(fds[0]);
  }
  std::map<char, int> received;
  while (!readers.empty()) {
    auto ready = wait(readers, 20s);
    ASSERT_FALSE(ready.empty());
    for (int fd : ready) {
      char byte;
      if (::read(fd, &byte, 1) == 1) {
        ++received[byte];
      } else {  // EOF
        ::close(fd);
        std::erase(readers, fd);
      }
    }
  }
  for (auto& p : procs) p.join();
  ASSERT_EQ(received.size(), static_cast<std::size_t>(kWriters));
  for (auto& [writer, count] : received) EXPECT_EQ(count, kMessages) << writer;
}

}  // namespace
}  // namespace mproc
