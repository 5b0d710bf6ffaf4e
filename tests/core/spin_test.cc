// The spin loops in front of the futex sleeps (core/src/futex.h): how often they look, and that
// they return as soon as their condition holds.
#include <gtest/gtest.h>

#include "futex.h"

namespace mproc::detail {
namespace {

TEST(SpinUntil, LooksOncePerIterationAndOnceMoreAtTheEnd) {
  int looks = 0;
  EXPECT_FALSE(spin_until([&] { return ++looks, false; }, 100));
  EXPECT_EQ(looks, 101);
}

TEST(SpinUntil, ReturnsAtTheFirstLookThatSucceeds) {
  int looks = 0;
  EXPECT_TRUE(spin_until([&] { return ++looks == 3; }, 100));
  EXPECT_EQ(looks, 3);
}

TEST(SpinUntilBackingOff, DoublesTheGapUpToItsMaximumAndStopsAtTheBudget) {
  // Gaps of 1, 2, 4 ... 64 pauses, then 64 each: 800 pauses are 18 gaps (63 + 12 * 64 = 831
  // once the last one starts), so 18 looks and the last one after the spin.
  int looks = 0;
  EXPECT_FALSE(spin_until_backing_off([&] { return ++looks, false; }, 64, 800));
  EXPECT_EQ(looks, 19);
}

TEST(SpinUntilBackingOff, WithAGapOfOneItIsAPlainSpin) {
  int looks = 0;
  EXPECT_FALSE(spin_until_backing_off([&] { return ++looks, false; }, 1, 100));
  EXPECT_EQ(looks, 101);
}

TEST(SpinUntilBackingOff, ReturnsAtTheFirstLookThatSucceeds) {
  int looks = 0;
  EXPECT_TRUE(spin_until_backing_off([&] { return ++looks == 5; }, 64, 800));
  EXPECT_EQ(looks, 5);
}

TEST(SpinToLock, TakesAFreeLockAtOnceAndGivesUpOnAHeldOne) {
  int looks = 0;
  EXPECT_TRUE(spin_to_lock([&] { return ++looks, true; }));
  EXPECT_EQ(looks, 1);
  looks = 0;
  EXPECT_FALSE(spin_to_lock([&] { return ++looks, false; }));
  // Far fewer looks than pauses: the point of the backoff.
  EXPECT_LT(looks, 40);
}

}  // namespace
}  // namespace mproc::detail
