// The arena of results' states (pool/src/result_arena.cc): blocks of every size are aligned,
// distinct and keep what is written to them; freed blocks are reused and emptied slabs unmapped;
// threads at once and a fork while another thread allocates.
#include "result_arena.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <random>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "mproc/async_result.h"

namespace mproc::detail {
namespace {

bool aligned(const void* p) {
  return reinterpret_cast<std::uintptr_t>(p) % __STDCPP_DEFAULT_NEW_ALIGNMENT__ == 0;
}

void fill(void* p, std::size_t bytes, std::uint64_t seed) {
  auto* bytes_p = static_cast<unsigned char*>(p);
  for (std::size_t i = 0; i < bytes; ++i) bytes_p[i] = static_cast<unsigned char>(seed + i * 31);
}

bool holds(const void* p, std::size_t bytes, std::uint64_t seed) {
  const auto* bytes_p = static_cast<const unsigned char*>(p);
  for (std::size_t i = 0; i < bytes; ++i)
    if (bytes_p[i] != static_cast<unsigned char>(seed + i * 31)) return false;
  return true;
}

TEST(ResultArena, EverySizeIsAlignedDistinctAndKeepsItsBytes) {
  std::vector<std::pair<void*, std::size_t>> blocks;
  for (std::size_t bytes = 1; bytes <= kMaxArenaBlock; bytes += 7) {
    for (int copy = 0; copy < 3; ++copy) {
      void* p = allocate_arena_block(bytes);
      ASSERT_TRUE(aligned(p)) << bytes;
      fill(p, bytes, blocks.size());
      blocks.emplace_back(p, bytes);
    }
  }
  std::set<void*> distinct;
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    EXPECT_TRUE(holds(blocks[i].first, blocks[i].second, i)) << "block " << i;
    distinct.insert(blocks[i].first);
  }
  EXPECT_EQ(distinct.size(), blocks.size());
  for (auto& [p, bytes] : blocks) free_arena_block(p);
  free_arena_block(nullptr);              // as free(nullptr): nothing
  void* empty = allocate_arena_block(0);  // as malloc(0): a block of its own
  EXPECT_TRUE(aligned(empty));
  free_arena_block(empty);
  EXPECT_THROW((void)allocate_arena_block(kMaxArenaBlock + 1), std::bad_alloc);
}

TEST(ResultArena, AFreedBlockIsHandedOutAgainFirst) {
  void* first = allocate_arena_block(100);
  void* second = allocate_arena_block(100);
  EXPECT_NE(first, second);
  free_arena_block(first);
  EXPECT_EQ(allocate_arena_block(100), first);
  free_arena_block(first);
  free_arena_block(second);
}

TEST(ResultArena, ManyBlocksTakeHugeSlabsThatAreUnmappedOnceEmpty) {
  constexpr std::size_t kBytes = 200;
  constexpr std::size_t kBlocks = 60'000;  // about 13 MB: several 2 MiB slabs
  const std::size_t before = arena_mapped_bytes();
  std::vector<void*> blocks;
  blocks.reserve(kBlocks);
  for (std::size_t i = 0; i < kBlocks; ++i) {
    blocks.push_back(allocate_arena_block(kBytes));
    fill(blocks.back(), kBytes, i);
  }
  EXPECT_GE(arena_mapped_bytes() - before, kBlocks * kBytes);
  EXPECT_EQ(std::set<void*>(blocks.begin(), blocks.end()).size(), kBlocks);
  for (std::size_t i = 0; i < kBlocks; ++i) ASSERT_TRUE(holds(blocks[i], kBytes, i)) << i;
  // Freed in a scattered order, as results are taken: every slab but the size's last goes back.
  std::shuffle(blocks.begin(), blocks.end(), std::mt19937(7));
  for (void* p : blocks) free_arena_block(p);
  EXPECT_LE(arena_mapped_bytes(), before + kHugePageBytes);
}

TEST(ResultArena, ThreadsAllocateAndFreeAtOnce) {
  constexpr int kThreads = 4;
  std::atomic<int> corrupted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t, &corrupted] {
      std::mt19937 random(static_cast<unsigned>(t));
      std::vector<std::pair<void*, std::size_t>> held;
      for (std::uint64_t i = 0; i < 40'000; ++i) {
        if (held.size() < 500 && (held.empty() || random() % 3 != 0)) {
          const std::size_t bytes = 16 + random() % (kMaxArenaBlock - 16);
          void* p = allocate_arena_block(bytes);
          fill(p, bytes, i);
          std::memcpy(p, &i, sizeof i);  // the seed, to check it later
          held.emplace_back(p, bytes);
        } else {
          const std::size_t at = random() % held.size();
          auto [p, bytes] = held[at];
          std::uint64_t seed = 0;
          std::memcpy(&seed, p, sizeof seed);
          // Past the seed, the pattern fill() wrote from offset 8 on.
          if (!holds(static_cast<char*>(p) + sizeof seed, bytes - sizeof seed, seed + 31 * 8))
            ++corrupted;
          free_arena_block(p);
          held[at] = held.back();
          held.pop_back();
        }
      }
      for (auto& [p, bytes] : held) free_arena_block(p);
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(corrupted.load(), 0);
}

// A child forked while another thread allocates must not inherit the arena locked.
TEST(ResultArena, AChildForkedWhileAnotherThreadAllocatesCanAllocate) {
  std::atomic<bool> stop{false};
  std::thread busy([&stop] {
    while (!stop.load(std::memory_order_relaxed)) free_arena_block(allocate_arena_block(64));
  });
  for (int round = 0; round < 20; ++round) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      void* p = allocate_arena_block(64);
      free_arena_block(p);
      ::_exit(p != nullptr ? 0 : 1);
    }
    int status = -1;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (::waitpid(pid, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > until) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
        stop = true;
        busy.join();
        FAIL() << "the child forked in round " << round << " hung allocating";
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "round " << round;
  }
  stop = true;
  busy.join();
}

TEST(ResultArena, TheAllocatorTakesSingleSmallObjectsAndLeavesTheRestToNew) {
  struct Small {
    std::uint64_t a = 1, b = 2;
  };
  const std::size_t before = arena_mapped_bytes();
  auto shared = std::allocate_shared<Small>(ArenaAllocator<Small>{});
  EXPECT_EQ(shared->a + shared->b, 3u);
  EXPECT_TRUE(aligned(shared.get()));

  using Big = std::array<char, kMaxArenaBlock + 1>;
  ArenaAllocator<Big> big;
  Big* one = big.allocate(1);
  (*one)[kMaxArenaBlock] = 'x';
  big.deallocate(one, 1);
  ArenaAllocator<std::uint64_t> words;
  std::uint64_t* several = words.allocate(3);  // an array: not from the arena
  several[2] = 7;
  words.deallocate(several, 3);
  // Only the shared object's size may have needed a first slab.
  EXPECT_LE(arena_mapped_bytes() - before, std::size_t{64} << 10);
}

}  // namespace
}  // namespace mproc::detail
