#include "mproc/shm.h"

#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <system_error>

#include <gtest/gtest.h>

#include "mproc/errors.h"

#include "support.h"

namespace mproc {
namespace {

using test::fork_and_wait;

bool name_exists(const std::string& name) {
  struct stat st {};
  return ::stat(("/dev/shm/" + name).c_str(), &st) == 0;
}

TEST(SharedSegment, CreateGivesAZeroFilledSegmentWithAnMprocName) {
  auto seg = SharedSegment::create(1000);
  EXPECT_TRUE(seg.valid());
  EXPECT_GE(seg.size(), 1000u);
  EXPECT_EQ(seg.name().rfind("mproc-" + std::to_string(::getpid()) + "-", 0), 0u);
  EXPECT_TRUE(seg.owned());
  const char* bytes = static_cast<const char*>(seg.data());
  for (std::size_t i = 0; i < 1000; ++i) ASSERT_EQ(bytes[i], 0);
}

TEST(SharedSegment, NamesAreUnique) {
  auto a = SharedSegment::create(64);
  auto b = SharedSegment::create(64);
  EXPECT_NE(a.name(), b.name());
}

TEST(SharedSegment, ZeroSizeIsAValueError) {
  EXPECT_THROW((void)SharedSegment::create(0), ValueError);
}

TEST(SharedSegment, OwnerUnlinksTheNameWhenItsLastHandleGoes) {
  std::string name;
  {
    auto seg = SharedSegment::create(64);
    name = seg.name();
    auto copy = seg;  // copies share the mapping
    EXPECT_TRUE(name_exists(name));
  }
  EXPECT_FALSE(name_exists(name));
}

TEST(SharedSegment, AttachSeesTheSameBytesAndNeverUnlinks) {
  auto seg = SharedSegment::create(64);
  std::strcpy(static_cast<char*>(seg.data()), "hello");
  {
    auto other = SharedSegment::attach(seg.name());
    EXPECT_FALSE(other.owned());
    EXPECT_STREQ(static_cast<const char*>(other.data()), "hello");
    static_cast<char*>(other.data())[0] = 'j';
  }
  EXPECT_TRUE(name_exists(seg.name()));
  EXPECT_STREQ(static_cast<const char*>(seg.data()), "jello");
}

TEST(SharedSegment, AttachToAMissingNameThrowsSystemError) {
  EXPECT_THROW((void)SharedSegment::attach("mproc-1-does-not-exist"), std::system_error);
}

TEST(SharedSegment, ForkedChildWritesAreSeenByTheParent) {
  auto seg = SharedSegment::create(64);
  auto result = fork_and_wait([&] {
    if (seg.owned()) return 1;  // the child shares the mapping, not the ownership
    std::strcpy(static_cast<char*>(seg.data()), "from child");
    return 0;
  });
  EXPECT_EQ(result.code, 0);
  EXPECT_STREQ(static_cast<const char*>(seg.data()), "from child");
}

TEST(SharedSegment, ChildAttachesByName) {
  auto seg = SharedSegment::create(64);
  std::string name = seg.name();
  auto result = fork_and_wait([&] {
    auto other = SharedSegment::attach(name);
    static_cast<char*>(other.data())[0] = 'x';
    return 0;
  });
  EXPECT_EQ(result.code, 0);
  EXPECT_EQ(static_cast<const char*>(seg.data())[0], 'x');
}

TEST(SharedSegment, ExplicitUnlinkRemovesTheNameAndKeepsTheMapping) {
  auto seg = SharedSegment::create(64);
  seg.unlink();
  EXPECT_FALSE(name_exists(seg.name()));
  static_cast<char*>(seg.data())[0] = 'y';  // still mapped
  seg.unlink();                             // idempotent
}

TEST(SharedSegment, AnUnnamedSegmentIsZeroFilledOwnedAndNotInDevShm) {
  auto seg = SharedSegment::create_unnamed(5000);
  EXPECT_GE(seg.size(), 5000u);
  EXPECT_TRUE(seg.owned());
  EXPECT_EQ(seg.name().rfind("mproc-" + std::to_string(::getpid()) + "-", 0), 0u);
  EXPECT_FALSE(name_exists(seg.name()));
  const char* bytes = static_cast<const char*>(seg.data());
  for (std::size_t i = 0; i < 5000; ++i) ASSERT_EQ(bytes[i], 0);
  EXPECT_THROW((void)SharedSegment::attach(seg.name()), std::system_error);
}

TEST(SharedSegment, AnUnnamedSegmentIsSharedWithAForkedChild) {
  auto seg = SharedSegment::create_unnamed(64);
  auto result = fork_and_wait([&] {
    std::strcpy(static_cast<char*>(seg.data()), "from child");
    return 0;
  });
  EXPECT_EQ(result.code, 0);
  EXPECT_STREQ(static_cast<const char*>(seg.data()), "from child");
}

// A child creates a segment and is killed with SIGKILL, so it never unlinks it itself; the
// tracker must, without anyone reaping the child first (it stays a zombie until we do).
void expect_tracker_cleans_up_after_a_killed_owner() {
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  pid_t child = test::fork_child([&] {
    auto seg = SharedSegment::create(4096);
    char c = 1;
    (void)::write(ready[1], &c, 1);
    ::pause();
    return 0;
  });
  char c = 0;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  ::close(ready[0]);
  ::close(ready[1]);
  EXPECT_EQ(detail::count_segments_of(child), 1u);
  ::kill(child, SIGKILL);
  for (int i = 0; i < 200 && detail::count_segments_of(child) != 0; ++i) ::usleep(10'000);
  EXPECT_EQ(detail::count_segments_of(child), 0u);
  EXPECT_EQ(test::wait_child(child).code, -SIGKILL);
}

// The resource tracker: a child that creates a segment and is killed with SIGKILL never unlinks
// it itself; the tracker does, without anyone reaping the child first.
TEST(ResourceTracker, SegmentsOfAKilledOwnerAreUnlinked) {
  expect_tracker_cleans_up_after_a_killed_owner();
}

TEST(ResourceTracker, RemoveSegmentsOfRemovesADeadChildsSegments) {
  auto result = fork_and_wait([] {
    auto seg = SharedSegment::create(4096);
    ::raise(SIGKILL);
    return 0;
  });
  EXPECT_EQ(result.code, -SIGKILL);
}

// A whole tree killed at once (tracker included) leaves segments that the next process to take
// its owner lock sweeps away: simulated here by a grandchild that creates a segment and a child
// that SIGKILLs the tracker-holding tree without any cleanup.
TEST(ResourceTracker, NextProgramSweepsSegmentsOfAKilledTree) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  auto result = fork_and_wait([&] {
    ::setpgid(0, 0);  // a tree of its own, tracker included
    auto seg = SharedSegment::create(4096);
    std::string name = seg.name() + "\n";
    (void)::write(fds[1], name.data(), name.size());
    ::kill(0, SIGKILL);  // the whole group: this process and its tracker
    return 0;
  });
  EXPECT_EQ(result.code, -SIGKILL);
  char buffer[128] = {};
  ASSERT_GT(::read(fds[0], buffer, sizeof buffer - 1), 0);
  ::close(fds[0]);
  ::close(fds[1]);
  std::string name(buffer, std::strchr(buffer, '\n'));
  // A fresh process (a new owner) sweeps at its first segment.
  auto sweeper = fork_and_wait([] {
    auto seg = SharedSegment::create(64);
    return 0;
  });
  EXPECT_EQ(sweeper.code, 0);
  // Another program sweeping at the same moment may be the one that removes it: allow it to
  // finish.
  for (int i = 0; i < 100 && name_exists(name); ++i) ::usleep(10'000);
  EXPECT_FALSE(name_exists(name));
}

}  // namespace
}  // namespace mproc

namespace mproc {
namespace {

bool alive(pid_t pid) { return ::kill(pid, 0) == 0; }

// Parity test_resource_tracker: the creator dies by SIGTERM; the tracker unlinks its segments
// and says on stderr that there were leaked ones.
TEST(ResourceTracker, CleansUpAfterATerminatedCreatorAndWarnsAboutTheLeak) {
  auto run = test::run_program(SHM_LEAKER, {}, std::chrono::seconds(20));
  ASSERT_FALSE(run.timed_out);
  EXPECT_EQ(run.exit_code, -SIGTERM);
  auto names = test::lines_of(run.out);
  ASSERT_EQ(names.size(), 2u) << run.out;
  for (const auto& name : names) EXPECT_FALSE(name_exists(name)) << name;
  EXPECT_NE(run.err.find("there appear to be 2 leaked shared memory objects"), std::string::npos)
      << run.err;
}

// Parity test_resource_tracker_reused: children use their parent's tracker.
TEST(ResourceTracker, ChildrenReuseTheParentsTracker) {
  auto seg = SharedSegment::create(64);
  pid_t tracker = detail::resource_tracker_pid();
  ASSERT_GT(tracker, 0);
  auto result = fork_and_wait([&] {
    auto mine = SharedSegment::create(64);
    return detail::resource_tracker_pid() == tracker ? 0 : 1;
  });
  EXPECT_EQ(result.code, 0);
}

// Parity test_resource_tracker_sigint / _sigterm: the tracker ignores both and goes on working.
TEST(ResourceTracker, IgnoresSigintAndSigterm) {
  auto seg = SharedSegment::create(64);
  pid_t tracker = detail::resource_tracker_pid();
  ASSERT_GT(tracker, 0);
  ::kill(tracker, SIGINT);
  ::kill(tracker, SIGTERM);
  ::usleep(50'000);
  EXPECT_TRUE(alive(tracker));
  EXPECT_EQ(detail::resource_tracker_pid(), tracker);
}

// Parity test_resource_tracker_sigkill: a killed tracker is replaced at the next segment.
TEST(ResourceTracker, AKilledTrackerIsRestartedAtTheNextSegment) {
  auto first = SharedSegment::create(64);
  pid_t tracker = detail::resource_tracker_pid();
  ASSERT_GT(tracker, 0);
  ASSERT_EQ(::kill(tracker, SIGKILL), 0);
  ::usleep(50'000);
  auto second = SharedSegment::create(64);
  pid_t replacement = detail::resource_tracker_pid();
  EXPECT_GT(replacement, 0);
  EXPECT_NE(replacement, tracker);
  // The new tracker does its job.
  expect_tracker_cleans_up_after_a_killed_owner();
}

// Parity test_too_long_name_resource: a name the tracker cannot carry is a ValueError.
TEST(ResourceTracker, ATooLongNameIsAValueError) {
  std::string name = "mproc-" + std::to_string(::getpid()) + "-" + std::string(300, 'x');
  EXPECT_THROW((void)SharedSegment::create_for_owner(name, 64), ValueError);
}

// Parity test_resource_tracker_blocked_signals: starting the tracker leaves the caller's signal
// mask as it was.
TEST(ResourceTracker, StartingItLeavesTheCallersSignalMaskAlone) {
  sigset_t blocked, before, after;
  sigemptyset(&blocked);
  sigaddset(&blocked, SIGUSR1);
  ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, &blocked, &before), 0);
  { auto seg = SharedSegment::create(64); }
  ASSERT_EQ(::pthread_sigmask(SIG_SETMASK, &before, &after), 0);
  EXPECT_EQ(sigismember(&after, SIGUSR1), 1);
  EXPECT_EQ(sigismember(&before, SIGUSR1), 0);
}

// Parity test_resource_tracker_exit_code [ADAPT]: the tracker is nobody's child (double fork),
// so its exit code is not observable; what is observable is that it ends once the tree is gone.
TEST(ResourceTracker, EndsOnceEveryProcessOfItsTreeHasExited) {
  // A program of its own (exec'd), so that its tree has a tracker of its own.
  auto run = test::run_program(SHM_LEAKER, {"tracker"}, std::chrono::seconds(20));
  ASSERT_FALSE(run.timed_out);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  pid_t tracker = static_cast<pid_t>(std::stol(run.out));
  ASSERT_GT(tracker, 0);
  // It may linger as a zombie until init reaps it: check /proc for a live (non-zombie) state.
  bool ended = false;
  for (int i = 0; i < 200 && !ended; ++i) {
    FILE* stat = std::fopen(("/proc/" + std::to_string(tracker) + "/stat").c_str(), "r");
    if (stat == nullptr) {
      ended = true;
      break;
    }
    char state = 0;
    int ignored_pid = 0;
    char comm[64];
    if (std::fscanf(stat, "%d %63s %c", &ignored_pid, comm, &state) == 3 && state == 'Z')
      ended = true;
    std::fclose(stat);
    if (!ended) ::usleep(10'000);
  }
  EXPECT_TRUE(ended);
}

}  // namespace
}  // namespace mproc
