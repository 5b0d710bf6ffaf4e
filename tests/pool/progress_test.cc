// The {.progress = true} bar of map/imap: its text, and that it draws only on a terminal.
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#include <string>

#include <gtest/gtest.h>

#include "mproc/mproc.h"

#include "support.h"

namespace progresstest {
int twice(int x) { return 2 * x; }
MPROC_TASK(progresstest::twice);
}  // namespace progresstest

namespace mproc {
namespace {

using detail::ProgressBar;
using namespace std::chrono_literals;

TEST(ProgressBar, FormatShowsDoneTotalPercentRateAndEta) {
  EXPECT_EQ(ProgressBar::format(30, 100, 2.0),
            "[#########.....................] 30/100  30% | 15/s | ETA 4.7s");
  EXPECT_EQ(ProgressBar::format(100, 100, 1.0),
            "[##############################] 100/100 100% | 100/s | ETA 0.0s");
  EXPECT_EQ(ProgressBar::format(7, 0, 2.0), "7 done | 4/s | 2.0s");
}

TEST(ProgressBar, IsNotDrawnWhenTheOutputIsNotATerminal) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  EXPECT_EQ(ProgressBar::for_fd(fds[1], 10), nullptr);
  ::close(fds[0]);
  ::close(fds[1]);
}

std::string read_available(int fd) {
  std::string text;
  char buffer[4096];
  pollfd p{fd, POLLIN, 0};
  while (::poll(&p, 1, 200) > 0) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n <= 0) break;
    text.append(buffer, static_cast<std::size_t>(n));
  }
  return text;
}

TEST(ProgressBar, DrawsOnATerminalAndEndsWithTheFullCount) {
  int master = ::posix_openpt(O_RDWR | O_NOCTTY);
  ASSERT_GE(master, 0);
  ASSERT_EQ(::grantpt(master), 0);
  ASSERT_EQ(::unlockpt(master), 0);
  int slave = ::open(::ptsname(master), O_RDWR | O_NOCTTY);
  ASSERT_GE(slave, 0);
  auto bar = ProgressBar::for_fd(slave, 4);
  ASSERT_NE(bar, nullptr);
  bar->advance(1);
  bar->advance(3);
  std::string drawn = read_available(master);
  EXPECT_NE(drawn.find("1/4"), std::string::npos) << drawn;
  EXPECT_NE(drawn.find("4/4 100%"), std::string::npos) << drawn;
  ::close(slave);
  ::close(master);
}

TEST(ProgressBar, AMapWithProgressStillReturnsItsResults) {
  Pool pool(2);
  // Under ctest stderr is a file or a pipe: no bar, same results.
  auto got = pool.map(progresstest::twice, std::vector{1, 2, 3}, {.progress = true});
  EXPECT_EQ(got, (std::vector<int>{2, 4, 6}));
  std::vector<int> seen;
  for (int v : pool.imap(progresstest::twice, std::vector{4, 5}, {.progress = true}))
    seen.push_back(v);
  EXPECT_EQ(seen, (std::vector<int>{8, 10}));
}

}  // namespace
}  // namespace mproc
