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
  EXPECT_EQ(window.limit(1), CreditWindow::kMinPerWorker);
  EXPECT_EQ(window.limit(3), 3 * CreditWindow::kMinPerWorker);
  EXPECT_EQ(window.limit(0), 0u);
}

TEST(CreditWindow, TinyChunksOpenItToTheMaximum) {
  CreditWindow window;
  std::int64_t now = 1;
  answer_every(window, now, 10 * kUs, 50, /*in_flight=*/8, /*workers=*/2);
  EXPECT_EQ(window.limit(2), 2 * CreditWindow::kMaxPerWorker);
}

TEST(CreditWindow, LongChunksKeepItAtTheMinimum) {
  CreditWindow window;
  std::int64_t now = 1;
  answer_every(window, now, 10'000 * kUs, 50, /*in_flight=*/8, /*workers=*/2);
  EXPECT_EQ(window.limit(2), 2 * CreditWindow::kMinPerWorker);
}

TEST(CreditWindow, HoldsAboutTheQueuedWorkInBetween) {
  CreditWindow window;
  std::int64_t now = 1;
  // One worker finishing a chunk every 125 us: 1 ms of work is 8 chunks.
  answer_every(window, now, 125 * kUs, 100, /*in_flight=*/6, /*workers=*/1);
  EXPECT_EQ(window.limit(1), 8u);
}

TEST(CreditWindow, GapsWhileAWorkerMayHaveWaitedAreNotMeasured) {
  CreditWindow window;
  std::int64_t now = 1;
  // Each answer leaves the node fewer chunks than workers: the gaps include idle time.
  answer_every(window, now, 10'000 * kUs, 50, /*in_flight=*/2, /*workers=*/2);
  EXPECT_EQ(window.limit(2), 2 * CreditWindow::kMinPerWorker);
  answer_every(window, now, 10 * kUs, 50, /*in_flight=*/2, /*workers=*/2);
  EXPECT_EQ(window.limit(2), 2 * CreditWindow::kMinPerWorker);
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
  EXPECT_EQ(window.limit(1), CreditWindow::kMinPerWorker);
}

TEST(CreditWindow, FollowsAChangeOfPace) {
  CreditWindow window;
  std::int64_t now = 1;
  answer_every(window, now, 10'000 * kUs, 20, /*in_flight=*/8, /*workers=*/1);
  EXPECT_EQ(window.limit(1), CreditWindow::kMinPerWorker);
  answer_every(window, now, 20 * kUs, 100, /*in_flight=*/8, /*workers=*/1);
  EXPECT_EQ(window.limit(1), CreditWindow::kMaxPerWorker);
  answer_every(window, now, 10'000 * kUs, 20, /*in_flight=*/8, /*workers=*/1);
  EXPECT_EQ(window.limit(1), CreditWindow::kMinPerWorker);
}

}  // namespace
}  // namespace mproc::dist
