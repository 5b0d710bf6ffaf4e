// CreditWindow: how many chunks rank 0 lets a node agent hold, from the answers' pace.
#include "credit_window.h"

#include <cstdint>

#include <gtest/gtest.h>

namespace mproc::dist {
namespace {

constexpr std::int64_t kUs = 1000;

// Answers `count` chunks `gap` apart, the node holding `in_flight` before each.
void answer_every(CreditWindow& window, std::int64_t& now, std::int64_t gap, int count,
                  std::uint32_t in_flight, std::uint32_t workers) {
  for (int i = 0; i < count; ++i) {
    now += gap;
    window.on_answer(now, in_flight, workers);
  }
}

TEST(CreditWindow, StartsAtTheMinimumPerWorker) {
  CreditWindow window;
  EXPECT_EQ(window.limit(1, 0), CreditWindow::kMinPerWorker);
  EXPECT_EQ(window.limit(3, 0), 3 * CreditWindow::kMinPerWorker);
  EXPECT_EQ(window.limit(0, 0), 0u);
}

TEST(CreditWindow, TinyChunksOpenItToTheMaximum) {
  CreditWindow window;
  std::int64_t now = 1;
  answer_every(window, now, 10 * kUs, 50, /*in_flight=*/8, /*workers=*/2);
  EXPECT_EQ(window.limit(2, now), 2 * CreditWindow::kMaxPerWorker);
}

TEST(CreditWindow, LongChunksKeepItAtTheMinimum) {
  CreditWindow window;
  std::int64_t now = 1;
  answer_every(window, now, 10'000 * kUs, 50, /*in_flight=*/8, /*workers=*/2);
  EXPECT_EQ(window.limit(2, now), 2 * CreditWindow::kMinPerWorker);
}

TEST(CreditWindow, HoldsAboutTheQueuedWorkInBetween) {
  CreditWindow window;
  std::int64_t now = 1;
  // One worker finishing a chunk every 125 us: 1 ms of work is 8 chunks.
  answer_every(window, now, 125 * kUs, 100, /*in_flight=*/6, /*workers=*/1);
  EXPECT_EQ(window.limit(1, now), 8u);
}

TEST(CreditWindow, GapsWhileAWorkerMayHaveWaitedAreNotMeasured) {
  CreditWindow window;
  std::int64_t now = 1;
  // Each answer leaves the node fewer chunks than workers: the gaps include idle time.
  answer_every(window, now, 10'000 * kUs, 50, /*in_flight=*/2, /*workers=*/2);
  EXPECT_EQ(window.limit(2, now), 2 * CreditWindow::kMinPerWorker);
  answer_every(window, now, 10 * kUs, 50, /*in_flight=*/2, /*workers=*/2);
  EXPECT_EQ(window.limit(2, now), 2 * CreditWindow::kMinPerWorker);
}

TEST(CreditWindow, BurstsOfAnswersAverageOut) {
  CreditWindow window;
  std::int64_t now = 1;
  // Four answers at once every 2 ms on one worker: a chunk takes 500 us, 1 ms holds 2, and the
  // minimum applies, not the maximum that the bursts' zero gaps alone would give.
  for (int burst = 0; burst < 50; ++burst) {
    answer_every(window, now, 2000 * kUs, 1, /*in_flight=*/6, /*workers=*/1);
    answer_every(window, now, 0, 3, /*in_flight=*/6, /*workers=*/1);
  }
  EXPECT_EQ(window.limit(1, now), CreditWindow::kMinPerWorker);
}

TEST(CreditWindow, FollowsAChangeOfPace) {
  CreditWindow window;
  std::int64_t now = 1;
  answer_every(window, now, 10'000 * kUs, 20, /*in_flight=*/8, /*workers=*/1);
  EXPECT_EQ(window.limit(1, now), CreditWindow::kMinPerWorker);
  answer_every(window, now, 20 * kUs, 100, /*in_flight=*/8, /*workers=*/1);
  EXPECT_EQ(window.limit(1, now), CreditWindow::kMaxPerWorker);
  answer_every(window, now, 10'000 * kUs, 20, /*in_flight=*/8, /*workers=*/1);
  EXPECT_EQ(window.limit(1, now), CreditWindow::kMinPerWorker);
}

TEST(CreditWindow, ANodeIdleForLongerThanTheWorkItMayHoldStartsAgainFromTheMinimum) {
  CreditWindow window;
  std::int64_t now = 1;
  answer_every(window, now, 10 * kUs, 50, /*in_flight=*/8, /*workers=*/1);
  answer_every(window, now, 10 * kUs, 1, /*in_flight=*/1, /*workers=*/1);
  // Found empty at once (the last answer of a burst): nothing changes.
  window.on_send(now + 50 * kUs, /*in_flight=*/0);
  ASSERT_EQ(window.limit(1, now + 50 * kUs), CreditWindow::kMaxPerWorker);
  // Nor while chunks are still out.
  window.on_send(now + 5000 * kUs, /*in_flight=*/3);
  ASSERT_EQ(window.limit(1, now + 5000 * kUs), CreditWindow::kMaxPerWorker);
  window.on_send(now + 5000 * kUs, /*in_flight=*/0);
  EXPECT_EQ(window.limit(1, now + 5000 * kUs), CreditWindow::kMinPerWorker);
}

TEST(CreditWindow, ABusyNodeSilentForLongerThanTheWorkItMayHoldGetsTheMinimum) {
  CreditWindow window;
  std::int64_t now = 1;
  answer_every(window, now, 20 * kUs, 50, /*in_flight=*/8, /*workers=*/2);
  // Rank 0 taking a while to look is no reason to shrink it.
  EXPECT_EQ(window.limit(2, now + 500 * kUs), 2 * CreditWindow::kMaxPerWorker);
  EXPECT_EQ(window.limit(2, now + 2000 * kUs), 2 * CreditWindow::kMinPerWorker);
  // Nor is a silence while a worker has no chunk.
  answer_every(window, now, 20 * kUs, 1, /*in_flight=*/2, /*workers=*/2);
  EXPECT_EQ(window.limit(2, now + 2000 * kUs), 2 * CreditWindow::kMaxPerWorker);
}

}  // namespace
}  // namespace mproc::dist
