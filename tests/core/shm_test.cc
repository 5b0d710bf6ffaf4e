#include "mproc/shm.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

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

// The resource tracker: a child that creates a segment and is killed with SIGKILL never unlinks
// it itself; the tracker does, without anyone reaping the child first.
TEST(ResourceTracker, SegmentsOfAKilledOwnerAreUnlinked) {
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
  // Wait for the tracker, not for waitpid: the child stays a zombie until we reap it.
  for (int i = 0; i < 200 && detail::count_segments_of(child) != 0; ++i) ::usleep(10'000);
  EXPECT_EQ(detail::count_segments_of(child), 0u);
  EXPECT_EQ(test::wait_child(child).code, -SIGKILL);
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
  EXPECT_FALSE(name_exists(name));
}

}  // namespace
}  // namespace mproc
