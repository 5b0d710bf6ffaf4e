// The "mproc" logger: quiet by default, log_to_stderr raises the level, and every line carries
// the time, the pid and the process name; process start and exit are logged at debug.
#include "mproc/log.h"

#include <fcntl.h>
#include <unistd.h>

#include <regex>
#include <string>

#include <gtest/gtest.h>

#include "mproc/process.h"

#include "support.h"

namespace mproc {
namespace {

// Runs `body` in a child whose stderr goes to a pipe; returns what it wrote there.
std::string stderr_of_child(const std::function<void()>& body) {
  auto result = test::fork_capturing_stderr([&] {
    body();
    return 0;
  });
  EXPECT_EQ(result.exit.code, 0);
  return result.err;
}

TEST(Log, IsQuietByDefault) {
  std::string err = stderr_of_child([] {
    get_logger()->info("an info line");
    get_logger()->debug("a debug line");
  });
  EXPECT_EQ(err, "");
  EXPECT_EQ(get_logger()->level(), spdlog::level::warn);
  EXPECT_EQ(get_logger()->name(), "mproc");
}

TEST(Log, LinesCarryTimePidAndProcessName) {
  std::string err = stderr_of_child([] { get_logger()->warn("something odd"); });
  std::regex line(
      R"(\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\] \[(\d+)/MainProcess\] \[mproc\] \[warning\] something odd\n)");
  std::smatch match;
  ASSERT_TRUE(std::regex_match(err, match, line)) << err;
  EXPECT_NE(std::stoi(match[1]), ::getpid());  // the child's own pid
}

TEST(Log, LogToStderrRaisesTheLevelAndProcessLifeIsLoggedAtDebug) {
  std::string err = stderr_of_child([] {
    log_to_stderr(spdlog::level::debug);
    Process child([] {});
    child.start();
    child.join();
  });
  EXPECT_NE(err.find("/MainProcess] [mproc] [debug] started Process-1"), std::string::npos) << err;
  EXPECT_NE(err.find("/Process-1] [mproc] [debug]"), std::string::npos) << err;
  EXPECT_NE(err.find("exited with exitcode 0"), std::string::npos) << err;
}

}  // namespace
}  // namespace mproc
