// The "mproc" logger: quiet by default, log_to_stderr raises the level, and every line carries
// the time, the pid and the process name; process start and exit are logged at debug.
#include "mproc/log.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <regex>
#include <string>
#include <thread>

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

// A child forked while another thread writes a log line inherits the logger's locks as that
// thread held them; the logger lets go of them across fork, so the child can still log and name
// itself. Before it did, a child of the first few forks here hung at its first line.
TEST(Log, ChildForkedWhileAnotherThreadLogsCanLog) {
  test::ChildExit outcome = test::fork_and_wait(
      [] {
        const int null = ::open("/dev/null", O_WRONLY);
        ::dup2(null, 2);
        std::atomic<bool> stop{false};
        std::thread chatter([&] {
          while (!stop.load()) get_logger()->warn("a line from another thread");
        });
        int hung = 0;
        for (int i = 0; i < 200 && hung == 0; ++i) {
          pid_t child = test::fork_child([] {
            detail::set_log_process_name("Forked");
            get_logger()->warn("a line from the child");
            return 0;
          });
          test::ChildExit exit = test::wait_child(child, std::chrono::seconds(5));
          if (exit.timed_out || exit.code != 0) ++hung;
        }
        stop = true;
        chatter.join();
        return hung;
      },
      std::chrono::seconds(60));
  EXPECT_FALSE(outcome.timed_out);
  EXPECT_EQ(outcome.code, 0) << "a child forked while another thread logged did not finish";
}

}  // namespace
}  // namespace mproc
