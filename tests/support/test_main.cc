// main() of every mproc test binary: GoogleTest, plus two checks after each test that it left
// nothing behind: no mproc segment in /dev/shm owned by this process or by a dead one, and no
// unreaped child (a zombie).
#include <sys/wait.h>

#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "mproc/init.h"

#include "support.h"

namespace {

// Only what appeared during the test counts: a leak of another test running at the same time
// (ctest -j) must fail that test, not every test that happens to look after it.
class LeakCheck : public testing::EmptyTestEventListener {
  void OnTestStart(const testing::TestInfo&) override {
    auto before = mproc::test::leaked_segments();
    before_ = std::set<std::string>(before.begin(), before.end());
  }

  std::vector<std::string> new_leaks() const {
    std::vector<std::string> leaks;
    for (auto& name : mproc::test::leaked_segments())
      if (before_.count(name) == 0) leaks.push_back(name);
    return leaks;
  }

  void OnTestEnd(const testing::TestInfo& info) override {
    if (info.result()->Skipped()) return;
    // The resource tracker unlinks a killed owner's segments asynchronously: give it a moment.
    auto leaks = new_leaks();
    for (int i = 0; i < 100 && !leaks.empty(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      leaks = new_leaks();
    }
    std::string names;
    for (const auto& n : leaks) names += " " + n;
    EXPECT_TRUE(leaks.empty()) << "the test left segments in /dev/shm:" << names;
    siginfo_t info_child{};
    int rc = ::waitid(P_ALL, 0, &info_child, WEXITED | WNOHANG | WNOWAIT);
    EXPECT_FALSE(rc == 0 && info_child.si_pid != 0)
        << "the test left an unreaped child: pid " << info_child.si_pid;
  }

  std::set<std::string> before_;
};

}  // namespace

int main(int argc, char** argv) {
  // Children started by spawn, and the fork server, run this same binary: init turns them into
  // what they are (and never returns there).
  mproc::init(argc, argv);
  testing::InitGoogleTest(&argc, argv);
  testing::UnitTest::GetInstance()->listeners().Append(new LeakCheck);
  return RUN_ALL_TESTS();
}
