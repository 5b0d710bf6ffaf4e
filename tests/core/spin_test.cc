// The spin loops in front of the futex sleeps (core/src/futex.h): how often they look, and that
// they return as soon as their condition holds.
#include <gtest/gtest.h>

#include "futex.h"

namespace mproc::detail {
namespace {

// A condition that counts the looks at it and holds from look `holds_at` on (0: never).
struct Counted {
  int looks = 0;
  int holds_at = 0;
  bool operator()() {
    ++looks;
    return holds_at != 0 && looks >= holds_at;
  }
};

TEST(SpinUntil, LooksOncePerIterationAndOnceMoreAtTheEnd) {
  Counted never;
  EXPECT_FALSE(spin_until([&] { return never(); }, 100));
  EXPECT_EQ(never.looks, 101);
}

TEST(SpinUntil, ReturnsAtTheFirstLookThatSucceeds) {
  Counted third{.holds_at = 3};
  EXPECT_TRUE(spin_until([&] { return third(); }, 100));
  EXPECT_EQ(third.looks, 3);
}

TEST(SpinUntilBackingOff, DoublesTheGapUpToItsMaximumAndStopsAtTheBudget) {
  // Gaps of 1, 2, 4 ... 64 pauses, then 64 each: 800 pauses are 18 gaps (63 + 12 * 64 = 831
  // once the last one starts), so 18 looks and the last one after the spin.
  Counted never;
  EXPECT_FALSE(spin_until_backing_off([&] { return never(); }, 64, 800));
  EXPECT_EQ(never.looks, 19);
}

TEST(SpinUntilBackingOff, WithAGapOfOneItIsAPlainSpin) {
  Counted never;
  EXPECT_FALSE(spin_until_backing_off([&] { return never(); }, 1, 100));
  EXPECT_EQ(never.looks, 101);
}

TEST(SpinUntilBackingOff, ReturnsAtTheFirstLookThatSucceeds) {
  Counted fifth{.holds_at = 5};
  EXPECT_TRUE(spin_until_backing_off([&] { return fifth(); }, 64, 800));
  EXPECT_EQ(fifth.looks, 5);
}

TEST(SpinToLock, TakesAFreeLockAtOnceAndGivesUpOnAHeldOne) {
  Counted free_lock{.holds_at = 1};
  EXPECT_TRUE(spin_to_lock([&] { return free_lock(); }));
  EXPECT_EQ(free_lock.looks, 1);
  Counted held_lock;
  EXPECT_FALSE(spin_to_lock([&] { return held_lock(); }));
  // Far fewer looks than pauses: the point of the backoff.
  EXPECT_EQ(held_lock.looks, 19);
}

}  // namespace
}  // namespace mproc::detail
