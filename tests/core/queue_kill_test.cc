// Queues survive SIGKILL: producers and consumers killed in the middle of puts and gets (in the
// ring, out of line, in the overflow chunks, holding the queue's robust mutex or not) leave no
// half-written item behind, lose no complete item and hang nobody.
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <new>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "mproc/errors.h"
#include "mproc/queue.h"
#include "mproc/shm.h"

#include "support.h"

namespace mproc {
namespace {

using namespace std::chrono_literals;
using test::fork_child;
using test::wait_child;

// An item that says who made it and which one it is, with a mark on every page so that a
// partially copied item (zero pages) cannot pass for a complete one.
std::string make_item(std::uint32_t producer, std::uint32_t seq, std::size_t size) {
  std::string s(size, '\0');
  std::memcpy(s.data(), &producer, 4);
  std::memcpy(s.data() + 4, &seq, 4);
  for (std::size_t i = 4096; i < size; i += 4096)
    s[i] = static_cast<char>(1 + (producer * 31 + seq + i / 4096) % 255);
  s[size - 1] = static_cast<char>(0x5a);
  return s;
}

struct Tag {
  std::uint32_t producer = 0, seq = 0;
};

// Checks an item's marks; returns who made it.
Tag check_item(const std::string& s, std::size_t size) {
  EXPECT_EQ(s.size(), size);
  Tag tag;
  if (s.size() != size || size < 8) return tag;
  std::memcpy(&tag.producer, s.data(), 4);
  std::memcpy(&tag.seq, s.data() + 4, 4);
  for (std::size_t i = 4096; i < size; i += 4096) {
    if (s[i] != static_cast<char>(1 + (tag.producer * 31 + tag.seq + i / 4096) % 255)) {
      ADD_FAILURE() << "item " << tag.producer << "/" << tag.seq << " is torn at byte " << i;
      return tag;
    }
  }
  EXPECT_EQ(s[size - 1], static_cast<char>(0x5a));
  return tag;
}

std::mt19937 seeded_rng() {
  auto seed = static_cast<unsigned>(std::chrono::steady_clock::now().time_since_epoch().count());
  std::printf("random seed %u\n", seed);
  return std::mt19937(seed);
}

// Producers that put items in a loop until killed; then the test drains the queue and checks
// that each producer's items arrived in order, each once, from 0 up without a gap.
void producers_killed_at_random(const QueueOptions& options, std::size_t item_size, int producers,
                                int rounds, int min_ms, int max_ms) {
  Queue<std::string> q(options);
  auto rng = seeded_rng();
  std::vector<std::uint32_t> next(static_cast<std::size_t>(producers * rounds), 0);
  for (int round = 0; round < rounds; ++round) {
    std::vector<pid_t> pids;
    for (int p = 0; p < producers; ++p) {
      auto id = static_cast<std::uint32_t>(round * producers + p);
      pids.push_back(fork_child([&, id] {
        for (std::uint32_t seq = 0;; ++seq) q.put(make_item(id, seq, item_size));
        return 0;
      }));
    }
    std::this_thread::sleep_for(
        std::chrono::milliseconds(std::uniform_int_distribution<int>(min_ms, max_ms)(rng)));
    for (pid_t pid : pids) ::kill(pid, SIGKILL);
    for (pid_t pid : pids) EXPECT_EQ(wait_child(pid, 10s).code, -SIGKILL);
    // Drain what they managed to put (a get in between keeps the ring moving).
    for (;;) {
      std::string item;
      try {
        item = q.get_nowait();
      } catch (const Empty&) {
        break;
      }
      Tag tag = check_item(item, item_size);
      ASSERT_LT(tag.producer, next.size());
      ASSERT_EQ(tag.seq, next[tag.producer]) << "producer " << tag.producer << " lost or doubled";
      ++next[tag.producer];
    }
  }
  EXPECT_EQ(q.qsize(), 0u);
  // The queue still works, mutex and all.
  q.put("after", 2s);
  EXPECT_EQ(q.get(2s), "after");
}

TEST(QueueKill, ProducersKilledWhileCopyingIntoTheRingLoseNothing) {
  // 1 MiB items in a 16 MiB ring: the copy under the mutex takes long enough that many kills
  // land while a producer holds it (the next locker gets EOWNERDEAD).
  producers_killed_at_random({.capacity = std::size_t{16} << 20}, std::size_t{1} << 20, 2, 8, 5,
                             60);
}

TEST(QueueKill, ProducersKilledWhilePuttingSmallItemsIntoOverflowChunksLoseNothing) {
  // A 4 KiB ring: nearly every item goes to the overflow chunks (appends, new chunks, renames).
  producers_killed_at_random({.capacity = 4096}, 200, 2, 8, 5, 60);
}

TEST(QueueKill, ProducerKilledWhilePutting64MiBItemsLosesNothing) {
  // Out of line: each item is written into a segment of its own, then referenced or renamed
  // into the overflow. Killed at random: a half-written parcel must never be seen.
  producers_killed_at_random({}, std::size_t{64} << 20, 1, 4, 100, 900);
}

// A consumer that gets items until killed, reporting each one it completed; the items it was
// taking when killed is at most one item lost, and the next consumer goes on from there.
void consumers_killed_at_random(std::size_t item_size, int items, const QueueOptions& options,
                                int min_ms, int max_ms) {
  Queue<std::string> q(options);
  auto shared = SharedSegment::create(2 * sizeof(std::atomic<std::int64_t>));
  auto* last_done = new (shared.data()) std::atomic<std::int64_t>(-1);
  auto* all_put = new (last_done + 1) std::atomic<std::int64_t>(0);
  pid_t producer = fork_child([&] {
    for (int i = 0; i < items; ++i) q.put(make_item(0, static_cast<std::uint32_t>(i), item_size));
    all_put->store(1);
    return 0;
  });
  auto rng = seeded_rng();
  std::int64_t expected_next = 0;
  int lost = 0;
  while (expected_next < items) {
    pid_t consumer = fork_child([&] {
      for (;;) {
        std::string item = q.get(10s);
        std::uint32_t seq;
        std::memcpy(&seq, item.data() + 4, 4);
        last_done->store(seq);
      }
      return 0;
    });
    std::this_thread::sleep_for(
        std::chrono::milliseconds(std::uniform_int_distribution<int>(min_ms, max_ms)(rng)));
    ::kill(consumer, SIGKILL);
    EXPECT_EQ(wait_child(consumer, 10s).code, -SIGKILL);
    // What it completed, in order; the item after it may have been taken and not reported.
    std::int64_t done = last_done->load();
    if (done + 1 > expected_next) expected_next = done + 1;
    std::string item;
    try {
      item = q.get(200ms);
    } catch (const Empty&) {
      // Nothing there yet, or all done: the last item may have gone with the last consumer.
      if (all_put->load() == 0) continue;
      EXPECT_GE(expected_next + 1, items) << "items are missing from an empty queue";
      lost += static_cast<int>(items - expected_next);
      break;
    }
    Tag tag = check_item(item, item_size);
    ASSERT_GE(tag.seq, expected_next) << "an item was delivered twice";
    ASSERT_LE(tag.seq, expected_next + 1) << "more than the item being taken was lost";
    lost += static_cast<int>(tag.seq - expected_next);
    expected_next = tag.seq + 1;
    last_done->store(tag.seq);
  }
  EXPECT_EQ(wait_child(producer, 60s).code, 0);
  EXPECT_EQ(q.qsize(), 0u);
  std::printf("items taken by killed consumers without a report: %d\n", lost);
  q.put("after", 2s);
  EXPECT_EQ(q.get(2s), "after");
}

TEST(QueueKill, ConsumersKilledWhileCopyingOutOfTheRingTakeAtMostOneItemEach) {
  consumers_killed_at_random(std::size_t{1} << 20, 300, {.capacity = std::size_t{16} << 20}, 5, 40);
}

TEST(QueueKill, ConsumersKilledWhileTakingOutOfLineItemsTakeAtMostOneItemEach) {
  consumers_killed_at_random(std::size_t{24} << 20, 24, {.maxsize = 4}, 20, 200);
}

TEST(QueueKill, ConsumersKilledWhileReadingOverflowChunksTakeAtMostOneItemEach) {
  consumers_killed_at_random(200, 20000, {.capacity = 4096}, 2, 20);
}

TEST(QueueKill, ConsumerKilledInsideItsClaimHoldingTheLockLeavesTheItemQueued) {
  // Dies holding the queue's robust mutex, deterministically: the next locker gets EOWNERDEAD.
  detail::ByteQueue q(QueueOptions{});
  q.put("kept", Deadline::never());
  q.put("next", Deadline::never());
  pid_t consumer = fork_child([&] {
    std::string out;
    q.get(out, Deadline::never(), [](std::string_view) { ::kill(::getpid(), SIGKILL); });
    return 0;
  });
  EXPECT_EQ(wait_child(consumer, 10s).code, -SIGKILL);
  EXPECT_EQ(q.qsize(), 2u);
  EXPECT_EQ(q.approx_qsize(), 2u);  // what spinning waiters read: nothing taken
  std::string out;
  q.get(out, Deadline::after(2s));
  EXPECT_EQ(out, "kept");
  EXPECT_EQ(q.approx_qsize(), 1u);
  q.get(out, Deadline::after(2s));
  EXPECT_EQ(out, "next");
  EXPECT_EQ(q.approx_qsize(), 0u);
  q.put("after", Deadline::after(2s));
  q.get(out, Deadline::after(2s));
  EXPECT_EQ(out, "after");
}

// A producer that dies copying a large item into the ring, outside the queue's lock, its record
// already reserved: the item's bytes run into a page it may not read, and the fault ends it.
class ProducerDeadMidCopy {
 public:
  explicit ProducerDeadMidCopy(detail::ByteQueue& q) {
    const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    size_ = kReadable + page;
    map_ = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    EXPECT_NE(map_, MAP_FAILED);
    EXPECT_EQ(::mprotect(static_cast<char*>(map_) + kReadable, page, PROT_NONE), 0);
    pid_t producer = fork_child([&] {
      struct sigaction on_fault {};
      on_fault.sa_handler = [](int) { ::_exit(3); };  // before a sanitizer's own handler
      ::sigaction(SIGSEGV, &on_fault, nullptr);
      q.put(std::string_view(static_cast<const char*>(map_), size_), Deadline::never());
      return 0;
    });
    EXPECT_EQ(wait_child(producer, 10s).code, 3) << "the producer was to fault in its copy";
  }
  ~ProducerDeadMidCopy() { ::munmap(map_, size_); }
  ProducerDeadMidCopy(const ProducerDeadMidCopy&) = delete;
  ProducerDeadMidCopy& operator=(const ProducerDeadMidCopy&) = delete;

 private:
  static constexpr std::size_t kReadable = std::size_t{1} << 20;
  void* map_ = nullptr;
  std::size_t size_ = 0;
};

TEST(QueueKill, AProducerDeadWhileCopyingALargeItemOutsideTheLockLeavesNoHole) {
  detail::ByteQueue q(QueueOptions{});
  q.put("before", Deadline::never());
  ProducerDeadMidCopy dead(q);
  q.put("after", Deadline::never());
  EXPECT_EQ(q.qsize(), 3u);  // the dead put's reservation, until a get finds it dead
  std::string out;
  q.get(out, Deadline::after(5s));
  EXPECT_EQ(out, "before");
  q.get(out, Deadline::after(5s));  // past the dead record, once its writer slot is taken over
  EXPECT_EQ(out, "after");
  EXPECT_EQ(q.qsize(), 0u);
  // The dead put counts as never made: join() does not wait for a task_done() for it.
  q.task_done();
  q.task_done();
  EXPECT_TRUE(q.join(Deadline::after(2s)));
  // The ring and every writer slot still work, large items included.
  const std::string large(std::size_t{256} << 10, 'x');
  for (int i = 0; i < 8; ++i) q.put(large, Deadline::never());
  for (int i = 0; i < 8; ++i) {
    q.get(out, Deadline::after(5s));
    EXPECT_EQ(out, large);
  }
}

TEST(QueueKill, AGetThatMayNotWaitStillMovesPastADeadProducersRecord) {
  detail::ByteQueue q(QueueOptions{});
  ProducerDeadMidCopy dead(q);
  q.put("after", Deadline::never());
  std::string out;
  q.get(out, Deadline::now());
  EXPECT_EQ(out, "after");
  EXPECT_THROW(q.get(out, Deadline::now()), Empty);
}

}  // namespace
}  // namespace mproc
