// The engines' set of outstanding chunks (pool/src/chunk_set.h) against std::set: the same
// answers for every operation the engines use, in dense, sparse and shifting patterns.
#include "chunk_set.h"

#include <cstdint>
#include <random>
#include <set>
#include <vector>

#include <gtest/gtest.h>

namespace mproc::detail {
namespace {

void expect_same(const ChunkSet& chunks, const std::set<std::uint32_t>& reference) {
  ASSERT_EQ(chunks.size(), reference.size());
  ASSERT_EQ(chunks.empty(), reference.empty());
  ASSERT_EQ(std::vector<std::uint32_t>(chunks.begin(), chunks.end()),
            std::vector<std::uint32_t>(reference.begin(), reference.end()));
}

TEST(ChunkSet, InsertEraseCountAndOrderedIteration) {
  ChunkSet chunks;
  EXPECT_TRUE(chunks.empty());
  EXPECT_EQ(chunks.begin(), chunks.end());
  EXPECT_TRUE(chunks.insert(5));
  EXPECT_FALSE(chunks.insert(5));
  EXPECT_TRUE(chunks.insert(200));
  EXPECT_TRUE(chunks.insert(64));
  EXPECT_EQ(chunks.count(5), 1u);
  EXPECT_EQ(chunks.count(6), 0u);
  EXPECT_EQ(chunks.count(100000), 0u);
  EXPECT_EQ(std::vector<std::uint32_t>(chunks.begin(), chunks.end()),
            (std::vector<std::uint32_t>{5, 64, 200}));
  EXPECT_EQ(chunks.erase(5), 1u);
  EXPECT_EQ(chunks.erase(5), 0u);
  EXPECT_EQ(chunks.size(), 2u);
  chunks.clear();
  EXPECT_TRUE(chunks.empty());
  EXPECT_EQ(chunks.count(64), 0u);
}

TEST(ChunkSet, AMemberBelowTheLowestOneAfterOthersWereAnswered) {
  ChunkSet chunks;
  std::set<std::uint32_t> reference;
  for (std::uint32_t c = 0; c < 300; ++c) chunks.insert(c), reference.insert(c);
  for (std::uint32_t c = 0; c < 250; ++c) chunks.erase(c), reference.erase(c);
  chunks.insert(3), reference.insert(3);  // submitted again
  expect_same(chunks, reference);
  EXPECT_EQ(chunks.count(3), 1u);
  EXPECT_EQ(chunks.count(299), 1u);
}

TEST(ChunkSet, AnEndlessStreamKeepsOnlyItsWindow) {
  // As imap over an endless range: chunks answered about in order, a bounded window outstanding.
  ChunkSet chunks;
  std::set<std::uint32_t> reference;
  std::mt19937 random(7);
  std::uint32_t next = 0;
  for (int step = 0; step < 200'000; ++step) {
    if (reference.size() < 100 || random() % 2 == 0) {
      chunks.insert(next), reference.insert(next);
      ++next;
    } else {
      // Mostly the oldest, sometimes one in the middle.
      auto it = reference.begin();
      std::advance(it, random() % 4 == 0 ? random() % reference.size() : 0);
      const std::uint32_t c = *it;
      ASSERT_EQ(chunks.erase(c), 1u);
      reference.erase(it);
    }
    if (step % 997 == 0) expect_same(chunks, reference);
  }
  expect_same(chunks, reference);
}

TEST(ChunkSet, RandomOperationsAgreeWithStdSet) {
  ChunkSet chunks;
  std::set<std::uint32_t> reference;
  std::mt19937 random(11);
  for (int step = 0; step < 100'000; ++step) {
    const std::uint32_t c = random() % 3000;
    switch (random() % 4) {
      case 0:
      case 1:
        ASSERT_EQ(chunks.insert(c), reference.insert(c).second) << c;
        break;
      case 2:
        ASSERT_EQ(chunks.erase(c), reference.erase(c)) << c;
        break;
      default:
        ASSERT_EQ(chunks.count(c), reference.count(c)) << c;
    }
    if (step % 500 == 0) expect_same(chunks, reference);
    if (step % 20'000 == 0) chunks.clear(), reference.clear();
  }
  expect_same(chunks, reference);
}

}  // namespace
}  // namespace mproc::detail
