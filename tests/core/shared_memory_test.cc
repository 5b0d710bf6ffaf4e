#include "mproc/shared_memory.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <sstream>
#include <string>
#include <thread>

#include <boost/archive/binary_iarchive.hpp>
#include <boost/archive/binary_oarchive.hpp>
#include <gtest/gtest.h>

#include "mproc/errors.h"

#include "support.h"

namespace mproc {
namespace {

using namespace std::chrono_literals;
using test::fork_and_wait;
using Item = ShareableList::Item;
using Bytes = ShareableList::Bytes;

bool name_exists(const std::string& name) {
  struct stat st {};
  return ::stat(("/dev/shm/" + name).c_str(), &st) == 0;
}

// Names chosen by a test: unique per process and test, and removed by the test itself.
std::string test_name(const std::string& what) {
  static int counter = 0;
  return "mproc_test_" + std::to_string(::getpid()) + "_" + what + "_" + std::to_string(++counter);
}

// Removes a test's named block whatever happens to the test.
struct NameGuard {
  std::string name;
  ~NameGuard() { ::shm_unlink(("/" + name).c_str()); }
};

bool wait_until_gone(const std::string& name, std::chrono::milliseconds timeout) {
  auto end = std::chrono::steady_clock::now() + timeout;
  while (name_exists(name)) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

template <class T>
std::string serialized(const T& object) {
  std::ostringstream out;
  {
    boost::archive::binary_oarchive archive(out, boost::archive::no_header);
    archive << object;
  }
  return out.str();
}

template <class T>
T deserialized(const std::string& bytes) {
  std::istringstream in(bytes);
  boost::archive::binary_iarchive archive(in, boost::archive::no_header);
  T object;
  archive >> object;
  return object;
}

// ---- SharedMemory ----

TEST(SharedMemory, NameWithAnEmbeddedNullIsAValueError) {
  std::string bad("abc\0def", 7);
  EXPECT_THROW(SharedMemory({.name = bad, .create = true, .size = 8}), ValueError);
  EXPECT_THROW(SharedMemory::unlink_name(bad), ValueError);
}

TEST(SharedMemory, CreatedBlockHasTheRequestedNameAndSize) {
  NameGuard guard{test_name("basics")};
  SharedMemory shm({.name = guard.name, .create = true, .size = 512});
  EXPECT_EQ(shm.name(), guard.name);
  EXPECT_GE(shm.size(), 512u);
  EXPECT_GE(shm.buf().size(), shm.size());
  EXPECT_NE(shm.repr().find(guard.name), std::string::npos);
  EXPECT_NE(shm.repr().find("512"), std::string::npos);
  EXPECT_TRUE(name_exists(guard.name));
}

TEST(SharedMemory, ALeadingSlashNamesTheSameBlock) {
  NameGuard guard{test_name("slash")};
  SharedMemory shm({.name = "/" + guard.name, .create = true, .size = 64});
  EXPECT_EQ(shm.name(), guard.name);
  SharedMemory same(guard.name);
  EXPECT_EQ(same.size(), 64u);
}

TEST(SharedMemory, WriteIsSeenThroughASecondHandleAttachedByName) {
  SharedMemory shm({.create = true, .size = 512});
  std::memcpy(shm.buf().data(), "howdy", 5);
  SharedMemory other(shm.name());
  EXPECT_EQ(std::memcmp(other.buf().data(), "howdy", 5), 0);
  other.buf()[0] = std::byte{'j'};
  EXPECT_EQ(shm.buf()[0], std::byte{'j'});
}

TEST(SharedMemory, AttachingIgnoresTheSizeGiven) {
  SharedMemory shm({.create = true, .size = 512});
  SharedMemory other({.name = shm.name(), .size = 5000});
  EXPECT_EQ(other.size(), 512u);
}

TEST(SharedMemory, NegativeSizeIsAValueError) {
  EXPECT_THROW(SharedMemory({.name = test_name("neg"), .size = -2}), ValueError);
}

TEST(SharedMemory, AttachingWithoutANameIsAValueError) {
  EXPECT_THROW(SharedMemory(SharedMemoryOptions{}), ValueError);
}

TEST(SharedMemory, CreateWithSizeZeroOrNegativeIsAValueError) {
  EXPECT_THROW(SharedMemory({.create = true, .size = -1}), ValueError);
  EXPECT_THROW(SharedMemory({.create = true, .size = 0}), ValueError);
  EXPECT_THROW(SharedMemory({.create = true}), ValueError);
}

TEST(SharedMemory, SecondUnlinkThrowsFileNotFoundError) {
  SharedMemory shm({.create = true, .size = 64});
  shm.unlink();
  EXPECT_FALSE(name_exists(shm.name()));
  EXPECT_THROW(shm.unlink(), FileNotFoundError);
}

TEST(SharedMemory, CreatingAnExistingNameThrowsFileExistsError) {
  SharedMemory shm({.create = true, .size = 64});
  EXPECT_THROW(SharedMemory({.name = shm.name(), .create = true, .size = 64}), FileExistsError);
  EXPECT_TRUE(name_exists(shm.name()));  // the failed attempt removed nothing
}

TEST(SharedMemory, AttachingAMissingNameThrowsFileNotFoundError) {
  EXPECT_THROW(SharedMemory(test_name("missing")), FileNotFoundError);
}

TEST(SharedMemory, GeneratedNameCollisionIsRetriedWithANewName) {
  SharedMemory first({.create = true, .size = 64});
  // Names are mproc-<pid>-shm<n>: occupy the next one, as a leftover would.
  const std::string prefix = "mproc-" + std::to_string(::getpid()) + "-shm";
  ASSERT_EQ(first.name().rfind(prefix, 0), 0u);
  const int next = std::stoi(first.name().substr(prefix.size())) + 1;
  SharedMemory squatter({.name = prefix + std::to_string(next), .create = true, .size = 64});
  SharedMemory second({.create = true, .size = 64});
  EXPECT_NE(second.name(), squatter.name());
  EXPECT_NE(second.name(), first.name());
  squatter.unlink();
}

TEST(SharedMemory, GeneratedNamesAreUnique) {
  SharedMemory a({.create = true, .size = 64});
  SharedMemory b({.create = true, .size = 64});
  SharedMemory c({.create = true, .size = 64, .track = false});
  EXPECT_NE(a.name(), b.name());
  EXPECT_EQ(c.name().rfind("psm_", 0), 0u);
  c.unlink();
}

TEST(SharedMemory, CreatorsDestructorUnlinksTheName) {
  std::string name;
  {
    SharedMemory shm({.create = true, .size = 64});
    name = shm.name();
    EXPECT_TRUE(shm.owns_name());
    EXPECT_TRUE(name_exists(name));
  }
  EXPECT_FALSE(name_exists(name));
}

TEST(SharedMemory, AttachedHandleNeverUnlinks) {
  SharedMemory shm({.create = true, .size = 64});
  { SharedMemory other(shm.name()); }
  EXPECT_TRUE(name_exists(shm.name()));
}

TEST(SharedMemory, CloseEmptiesTheBufferAndKeepsTheBlock) {
  SharedMemory shm({.create = true, .size = 64});
  shm.buf()[3] = std::byte{7};
  shm.close();
  EXPECT_TRUE(shm.closed());
  EXPECT_TRUE(shm.buf().empty());
  shm.close();  // idempotent
  SharedMemory other(shm.name());
  EXPECT_EQ(other.buf()[3], std::byte{7});
}

TEST(SharedMemory, MovedHandleKeepsTheMappingAndTheOwnership) {
  SharedMemory shm({.create = true, .size = 64});
  std::string name = shm.name();
  SharedMemory moved = std::move(shm);
  EXPECT_EQ(moved.name(), name);
  EXPECT_FALSE(moved.buf().empty());
  EXPECT_TRUE(moved.owns_name());
  EXPECT_FALSE(shm.owns_name());  // NOLINT(bugprone-use-after-move): moved-from is empty
  EXPECT_TRUE(name_exists(name));
}

TEST(SharedMemory, SerializedHandleRefersToTheSameBlock) {
  SharedMemory shm({.create = true, .size = 64});
  auto copy = deserialized<SharedMemory>(serialized(shm));
  EXPECT_EQ(copy.name(), shm.name());
  copy.buf()[0] = std::byte{1};
  EXPECT_EQ(shm.buf()[0], std::byte{1});
  shm.buf()[1] = std::byte{2};
  EXPECT_EQ(copy.buf()[1], std::byte{2});
}

TEST(SharedMemory, DeserializingAnUnlinkedBlockThrowsFileNotFoundError) {
  SharedMemory shm({.create = true, .size = 64});
  std::string bytes = serialized(shm);
  shm.close();
  shm.unlink();
  EXPECT_THROW((void)deserialized<SharedMemory>(bytes), FileNotFoundError);
}

TEST(SharedMemory, ChildAttachedByNameWritesWhatTheParentReads) {
  SharedMemory shm({.create = true, .size = 64});
  std::string name = shm.name();
  auto result = fork_and_wait([&] {
    SharedMemory mine(name);
    std::memcpy(mine.buf().data(), "from child", 10);
    return 0;
  });
  ASSERT_EQ(result.code, 0);
  EXPECT_EQ(std::memcmp(shm.buf().data(), "from child", 10), 0);
  EXPECT_TRUE(name_exists(name));
}

TEST(SharedMemory, ChildWritesThroughTheInheritedHandleAndDoesNotUnlink) {
  SharedMemory shm({.create = true, .size = 64});
  auto result = fork_and_wait([&] {
    if (shm.owns_name()) return 1;  // the child shares the mapping, not the ownership
    shm.buf()[0] = std::byte{'x'};
    SharedMemory moved = std::move(shm);  // destroyed in the child: must not unlink
    return 0;
  });
  ASSERT_EQ(result.code, 0);
  EXPECT_EQ(shm.buf()[0], std::byte{'x'});
  EXPECT_TRUE(name_exists(shm.name()));
}

TEST(SharedMemory, BlockOfATerminatedCreatorIsUnlinkedByTheTracker) {
  NameGuard guard{test_name("terminated")};
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  pid_t pid = test::fork_child([&] {
    SharedMemory shm({.name = guard.name, .create = true, .size = 64});
    char c = 'r';
    (void)::write(ready[1], &c, 1);
    ::pause();
    return 0;
  });
  ::close(ready[1]);
  char c = 0;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  ::close(ready[0]);
  EXPECT_TRUE(name_exists(guard.name));
  ::kill(pid, SIGTERM);
  auto result = test::wait_child(pid, 10s);
  EXPECT_EQ(result.code, -SIGTERM);
  EXPECT_TRUE(wait_until_gone(guard.name, 5s));
}

TEST(SharedMemory, UntrackedBlockOutlivesItsCreator) {
  NameGuard guard{test_name("untracked")};
  auto result = fork_and_wait([&] {
    SharedMemory shm({.name = guard.name, .create = true, .size = 64, .track = false});
    shm.buf()[0] = std::byte{9};
    return 0;
  });
  ASSERT_EQ(result.code, 0);
  std::this_thread::sleep_for(100ms);  // the tracker would have acted by now
  ASSERT_TRUE(name_exists(guard.name));
  SharedMemory shm(guard.name);
  EXPECT_EQ(shm.buf()[0], std::byte{9});
  shm.unlink();
  EXPECT_FALSE(name_exists(guard.name));
}

TEST(SharedMemory, AttachingProcessExitDoesNotUnlink) {
  SharedMemory shm({.create = true, .size = 64});
  std::string name = shm.name();
  auto result = fork_and_wait([&] {
    SharedMemory mine(name);
    return 0;
  });
  ASSERT_EQ(result.code, 0);
  std::this_thread::sleep_for(100ms);
  EXPECT_TRUE(name_exists(name));
}

TEST(SharedMemory, ExistOkAttachesToAnExistingNameWithoutOwningIt) {
  SharedMemory shm({.create = true, .size = 64});
  shm.buf()[0] = std::byte{5};
  SharedMemory same({.name = shm.name(), .create = true, .size = 64, .exist_ok = true});
  EXPECT_FALSE(same.owns_name());
  EXPECT_EQ(same.buf()[0], std::byte{5});
  NameGuard guard{test_name("exist_ok")};
  SharedMemory fresh({.name = guard.name, .create = true, .size = 64, .exist_ok = true});
  EXPECT_TRUE(fresh.owns_name());
}

// ---- ShareableList ----

ShareableList seven_items() {
  return ShareableList{"howdy", Bytes{"HoWdY"}, -273.154, 100, nullptr, true, 42};
}

TEST(ShareableList, HoldsItsItemsWithPythonsPackingFormat) {
  auto sl = seven_items();
  EXPECT_EQ(sl.format(), "8s8sdqxxxxxx?xxxxxxxx?q");
  EXPECT_EQ(sl.size(), 7u);
  EXPECT_EQ(sl.to_vector(),
            (std::vector<Item>{"howdy", Bytes{"HoWdY"}, -273.154, 100, nullptr, true, 42}));
}

TEST(ShareableList, ReprShowsTheItemsAndTheName) {
  auto sl = seven_items();
  EXPECT_EQ(sl.repr(), "ShareableList(['howdy', b'HoWdY', -273.154, 100, None, True, 42], name='" +
                           sl.shm().name() + "')");
  EXPECT_EQ(ShareableList::item_repr(2.0), "2.0");
}

TEST(ShareableList, PositionOutOfRangeThrowsIndexError) {
  auto sl = seven_items();
  EXPECT_THROW((void)sl.get(7), IndexError);
  EXPECT_THROW(sl.set(7, 2), IndexError);
  EXPECT_THROW((void)sl.get(-8), IndexError);
}

TEST(ShareableList, NegativePositionsCountFromTheEnd) {
  auto sl = seven_items();
  EXPECT_EQ(sl.get(-2), Item(true));
  EXPECT_EQ(sl.get(-1), Item(42));
}

TEST(ShareableList, AssigningTheSameTypeKeepsTheFormat) {
  auto sl = seven_items();
  sl[0] = "howdy";
  sl[3] = 42;
  EXPECT_EQ(sl.get(3), Item(42));
  EXPECT_EQ(sl.format(), "8s8sdqxxxxxx?xxxxxxxx?q");
}

TEST(ShareableList, ChangingTheTypeAtASlotUpdatesTheFormat) {
  auto sl = seven_items();
  sl[4] = "some";
  EXPECT_EQ(sl.get(4), Item("some"));
  EXPECT_EQ(sl.format(), "8s8sdq8sxxxxxxx?q");
  sl[4] = 1.5;
  EXPECT_EQ(sl.get(4), Item(1.5));
  EXPECT_EQ(sl.format(), "8s8sdqdxxxxxxx?q");
}

TEST(ShareableList, TooLongTextThrowsAndKeepsTheOldValue) {
  auto sl = seven_items();
  sl[4] = "some";
  try {
    sl[4] = "far too many";
    FAIL() << "no exception";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("exceeds available storage"), std::string::npos);
  }
  EXPECT_EQ(sl.get(4), Item("some"));
  EXPECT_THROW(sl[1] = Bytes{"123456789"}, ValueError);
  EXPECT_EQ(sl.get(1), Item(Bytes{"HoWdY"}));
}

TEST(ShareableList, Utf8BytesCountAndNothingSpillsIntoTheNextSlot) {
  auto sl = seven_items();
  sl[0] = "encod\xc3\xa9s";  // 'encodés': exactly 8 bytes of UTF-8
  EXPECT_EQ(sl.get(0), Item("encod\xc3\xa9s"));
  EXPECT_EQ(sl.get(1), Item(Bytes{"HoWdY"}));
  EXPECT_THROW(sl[0] = "encod\xc3\xa9\x65s", ValueError);  // 'encodées': 9 bytes
  EXPECT_EQ(sl.get(1), Item(Bytes{"HoWdY"}));
}

TEST(ShareableList, CountAndIndexCompareTypeAndValue) {
  auto sl = seven_items();
  sl[3] = 42;
  EXPECT_EQ(sl.count(42), 2u);
  EXPECT_EQ(sl.count(Bytes{"HoWdY"}), 1u);
  EXPECT_EQ(sl.count(Bytes{"adios"}), 0u);
  EXPECT_EQ(sl.index(42), 3u);
  EXPECT_THROW((void)sl.index("100"), ValueError);
}

TEST(ShareableList, CopyWithANameIsIndependent) {
  auto sl = seven_items();
  NameGuard guard{test_name("duplicate")};
  ShareableList copy(sl, {.name = guard.name});
  EXPECT_NE(copy.shm().name(), sl.shm().name());
  EXPECT_EQ(copy.shm().name(), guard.name);
  EXPECT_EQ(copy.to_vector(), sl.to_vector());
  EXPECT_EQ(copy.format(), sl.format());
  copy[-1] = 77;
  EXPECT_EQ(copy.get(-1), Item(77));
  EXPECT_NE(sl.get(-1), Item(77));
}

TEST(ShareableList, AttachedByNameSharesTheData) {
  auto sl = seven_items();
  auto tethered = ShareableList::attach(sl.shm().name());
  EXPECT_EQ(tethered.shm().name(), sl.shm().name());
  tethered[-1] = 880;
  EXPECT_EQ(sl.get(-1), Item(880));
  EXPECT_EQ(tethered.format(), sl.format());
}

TEST(ShareableList, EmptyListHasNoItems) {
  ShareableList empty(std::vector<Item>{});
  EXPECT_EQ(empty.size(), 0u);
  EXPECT_EQ(empty.format(), "");
  EXPECT_EQ(empty.count("any"), 0u);
  EXPECT_THROW((void)empty.index(nullptr), ValueError);
}

TEST(ShareableList, AttachingToAnotherKindOfBlockIsAValueError) {
  SharedMemory shm({.create = true, .size = 64});
  std::memset(shm.buf().data(), 0xff, 64);
  EXPECT_THROW((void)ShareableList::attach(shm.name()), ValueError);
}

TEST(ShareableList, SerializedCopySharesMemoryAndSendsOnlyTheName) {
  auto sl = seven_items();
  auto copy = deserialized<ShareableList>(serialized(sl));
  copy[2] = 2.5;
  EXPECT_EQ(sl.get(2), Item(2.5));
  ShareableList longer(std::vector<Item>(100, Item(std::int64_t{1})));
  EXPECT_EQ(serialized(longer).size(),
            serialized(sl).size() + (longer.shm().name().size() - sl.shm().name().size()));
}

TEST(ShareableList, DeserializingAnUnlinkedListThrowsFileNotFoundError) {
  auto sl = seven_items();
  std::string bytes = serialized(sl);
  sl.shm().unlink();
  EXPECT_THROW((void)deserialized<ShareableList>(bytes), FileNotFoundError);
}

TEST(ShareableList, ChildAttachedByNameChangesWhatTheParentSees) {
  auto sl = seven_items();
  std::string name = sl.shm().name();
  auto result = fork_and_wait([&] {
    auto mine = ShareableList::attach(name);
    mine[3] = 1000;
    mine[0] = "bye";
    mine[4] = false;
    return 0;
  });
  ASSERT_EQ(result.code, 0);
  EXPECT_EQ(sl.get(3), Item(1000));
  EXPECT_EQ(sl.get(0), Item("bye"));
  EXPECT_EQ(sl.get(4), Item(false));
}

// Python's own multiprocessing.shared_memory reads and writes our lists and the other way round:
// the layout is Python's. (The script unregisters the block from Python's resource tracker, which
// would otherwise unlink it when the script exits.)
bool have_python() {
  auto run = test::run_program("/usr/bin/env",
                               {"python3", "-c", "from multiprocessing import shared_memory"});
  return run.exit_code == 0;
}

TEST(ShareableList, PythonAttachesToAListMadeHere) {
  if (!have_python()) GTEST_SKIP() << "no python3 with multiprocessing.shared_memory";
  auto sl = seven_items();
  const char* script = R"(
import sys
from multiprocessing import shared_memory, resource_tracker
sl = shared_memory.ShareableList(name=sys.argv[1])
resource_tracker.unregister(sl.shm._name, "shared_memory")
print(sl.format)
print(list(sl))
sl[3] = 7
sl[4] = 'py'
sl.shm.close()
)";
  auto run = test::run_program("/usr/bin/env", {"python3", "-c", script, sl.shm().name()});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(test::lines_of(run.out),
            (std::vector<std::string>{"8s8sdqxxxxxx?xxxxxxxx?q",
                                      "['howdy', b'HoWdY', -273.154, 100, None, True, 42]"}));
  EXPECT_EQ(sl.get(3), Item(7));
  EXPECT_EQ(sl.get(4), Item("py"));
}

TEST(ShareableList, AttachesToAListMadeByPython) {
  if (!have_python()) GTEST_SKIP() << "no python3 with multiprocessing.shared_memory";
  NameGuard guard{test_name("from_python")};
  const char* script = R"(
import sys
from multiprocessing import shared_memory, resource_tracker
sl = shared_memory.ShareableList(['a', 1, 2.5, None, True, b'xy', 'a longer string'],
                                 name=sys.argv[1])
resource_tracker.unregister(sl.shm._name, "shared_memory")
sl.shm.close()
)";
  auto run = test::run_program("/usr/bin/env", {"python3", "-c", script, guard.name});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  auto sl = ShareableList::attach(guard.name);
  EXPECT_EQ(sl.to_vector(),
            (std::vector<Item>{"a", 1, 2.5, nullptr, true, Bytes{"xy"}, "a longer string"}));
  EXPECT_EQ(sl.format(), "8sqdxxxxxx?xxxxxxxx?8s16s");
}

}  // namespace
}  // namespace mproc
