// main() of every mproc test binary: GoogleTest, plus two checks after each test that it left
// nothing behind: no mproc segment in /dev/shm owned by this process or by a dead one, and no
// unreaped child (a zombie).
#include <sys/wait.h>

#include <chrono>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "support.h"

namespace {

class LeakCheck : public testing::EmptyTestEventListener {
  void OnTestEnd(const testing::TestInfo& info) override {
    if (info.result()->Skipped()) return;
    // The resource tracker unlinks a killed owner's segments asynchronously: give it a moment.
    auto leaks = mproc::test::leaked_segments();
    for (int i = 0; i < 100 && !leaks.empty(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      leaks = mproc::test::leaked_segments();
    }
    std::string names;
    for (const auto& n : leaks) names += " " + n;
    EXPECT_TRUE(leaks.empty()) << "the test left segments in /dev/shm:" << names;
    siginfo_t info_child{};
    int rc = ::waitid(P_ALL, 0, &info_child, WEXITED | WNOHANG | WNOWAIT);
    EXPECT_FALSE(rc == 0 && info_child.si_pid != 0)
        << "the test left an unreaped child: pid " << info_child.si_pid;
  }
};

}  // namespace

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  testing::UnitTest::GetInstance()->listeners().Append(new LeakCheck);
  return RUN_ALL_TESTS();
}
