// Slice assignment and deletion on ListProxy and ArrayProxy, and DictProxy::fromkeys (issue 6;
// parity 7.1 test_list slicing, 7.4 test_dict `fromkeys`, test_array).
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "mproc/mproc.h"
#include "mproc/sync_manager.h"

#include "support.h"

namespace mproc {
namespace {

TEST(ManagerListSlice, SetSliceReplacesGrowsAndShrinks) {
  Manager m;
  auto l = m.list<int>(std::vector{0, 1, 2, 3, 4});
  l.set_slice(1, 3, std::vector{10, 11, 12});  // l[1:3] = [10, 11, 12]
  EXPECT_EQ(l.copy(), (std::vector<int>{0, 10, 11, 12, 3, 4}));
  l.set_slice(1, 4, std::vector<int>{});  // l[1:4] = []
  EXPECT_EQ(l.copy(), (std::vector<int>{0, 3, 4}));
  l.set_slice(std::nullopt, 0, std::vector{-2, -1});  // l[:0] = [-2, -1]
  EXPECT_EQ(l.copy(), (std::vector<int>{-2, -1, 0, 3, 4}));
  l.set_slice(-2, std::nullopt, std::vector{7});  // l[-2:] = [7]
  EXPECT_EQ(l.copy(), (std::vector<int>{-2, -1, 0, 7}));
}

TEST(ManagerListSlice, OutOfRangeAndReversedBoundsClampAsPython) {
  Manager m;
  auto l = m.list<int>(std::vector{0, 1, 2});
  l.set_slice(10, 20, std::vector{3});  // past the end: appends
  EXPECT_EQ(l.copy(), (std::vector<int>{0, 1, 2, 3}));
  l.set_slice(-100, 1, std::vector{9});  // before the start: clamped to 0
  EXPECT_EQ(l.copy(), (std::vector<int>{9, 1, 2, 3}));
  l.set_slice(3, 1, std::vector{5});  // stop < start: inserts at start
  EXPECT_EQ(l.copy(), (std::vector<int>{9, 1, 2, 5, 3}));
  EXPECT_EQ(l.slice(-3, 100), (std::vector<int>{2, 5, 3}));
  EXPECT_EQ(l.slice(4, 1), (std::vector<int>{}));
}

TEST(ManagerListSlice, ExtendedSliceNeedsSameLengthAndLeavesListOnError) {
  Manager m;
  auto l = m.list<int>(std::vector{0, 1, 2, 3, 4, 5});
  l.set_slice(std::nullopt, std::nullopt, 2, std::vector{10, 12, 14});  // l[::2] = ...
  EXPECT_EQ(l.copy(), (std::vector<int>{10, 1, 12, 3, 14, 5}));
  EXPECT_THROW(l.set_slice(std::nullopt, std::nullopt, 2, std::vector{1, 2}), ValueError);
  EXPECT_THROW(l.set_slice(0, 2, 0, std::vector{1}), ValueError);  // step 0
  EXPECT_EQ(l.copy(), (std::vector<int>{10, 1, 12, 3, 14, 5}));
  l.set_slice(std::nullopt, std::nullopt, -1, std::vector{0, 1, 2, 3, 4, 5});  // l[::-1] = ...
  EXPECT_EQ(l.copy(), (std::vector<int>{5, 4, 3, 2, 1, 0}));
}

TEST(ManagerListSlice, DelSliceWithNegativeAndOutOfRangeBounds) {
  Manager m;
  auto l = m.list<int>(std::vector{0, 1, 2, 3, 4, 5});
  l.del_slice(1, 3);  // del l[1:3]
  EXPECT_EQ(l.copy(), (std::vector<int>{0, 3, 4, 5}));
  l.del_slice(-2, 100);
  EXPECT_EQ(l.copy(), (std::vector<int>{0, 3}));
  l.del_slice(5, 9);  // nothing selected
  EXPECT_EQ(l.copy(), (std::vector<int>{0, 3}));
}

// One request: a reader never sees a half-done slice assignment (Python's `l[a:b] = x` is one
// server call too).
TEST(ManagerListSlice, SetSliceIsAtomicAgainstAnotherProcess) {
  Manager m;
  auto l = m.list<int>(std::vector<int>(8, 0));
  auto child = test::fork_child([&] {
    for (int round = 1; round <= 200; ++round) l.set_slice(0, 8, std::vector<int>(8, round));
    return 0;
  });
  bool torn = false;
  for (int i = 0; i < 200 && !torn; ++i) {
    std::vector<int> seen = l.copy();
    for (int x : seen) torn = torn || x != seen.front();
  }
  EXPECT_EQ(test::wait_child(child).code, 0);
  EXPECT_FALSE(torn);
  EXPECT_EQ(l.copy(), std::vector<int>(8, 200));
}

TEST(ManagerArraySlice, GetAndSetSliceKeepTheLength) {
  Manager m;
  auto a = m.Array<int>(std::vector{0, 1, 2, 3, 4});
  EXPECT_EQ(a.get_slice(1, 3), (std::vector<int>{1, 2}));
  EXPECT_EQ(a.get_slice(-2, std::nullopt), (std::vector<int>{3, 4}));
  EXPECT_EQ(a.get_slice(std::nullopt, std::nullopt, -2), (std::vector<int>{4, 2, 0}));
  a.set_slice(1, 3, std::vector{10, 20});
  EXPECT_EQ(a.tolist(), (std::vector<int>{0, 10, 20, 3, 4}));
  a.set_slice(std::nullopt, std::nullopt, 2, std::vector{7, 8, 9});
  EXPECT_EQ(a.tolist(), (std::vector<int>{7, 10, 8, 3, 9}));
}

TEST(ManagerArraySlice, WrongLengthIsValueErrorWrongKindIsTypeErrorArrayUnchanged) {
  Manager m;
  auto a = m.Array<int>(std::vector{0, 1, 2});
  EXPECT_THROW(a.set_slice(0, 2, std::vector{1, 2, 3}), ValueError);
  EXPECT_THROW(a.set_slice(0, 3, std::vector<int>{}), ValueError);
  ArrayProxy<Object> untyped = BaseProxy::from_object(a.to_object());
  EXPECT_THROW(untyped.set_slice(0, 2, Object::list({5, "x"})), TypeError);
  EXPECT_THROW((void)a.get_slice(0, 1, 0), ValueError);
  EXPECT_EQ(a.tolist(), (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(a.size(), 3u);
}

TEST(ManagerArraySlice, IntsIntoFloatArrayAreConverted) {
  Manager m;
  auto a = m.Array<double>(std::vector{0.5, 1.5});
  a.set_slice(0, 2, std::vector{1, 2});
  EXPECT_EQ(a.tolist(), (std::vector<double>{1.0, 2.0}));
}

TEST(ManagerDictFromkeys, GivesPlainDictAndLeavesProxyAlone) {  // 7.4 test_dict
  Manager m;
  auto d = m.dict();
  d["foo"] = 5;
  Object fresh = d.fromkeys(std::vector<std::string>{"foo", "bar"}, 6);
  EXPECT_EQ(fresh, Object::dict({{"foo", 6}, {"bar", 6}}));
  EXPECT_EQ(fresh.repr(), "{'foo': 6, 'bar': 6}");
  EXPECT_EQ(d.size(), 1u);  // the managed dict is not touched
  EXPECT_EQ(d.at("foo"), Object(5));
  Object nones = DictProxy<>::fromkeys(std::vector<int>{1, 2});
  EXPECT_EQ(nones.repr(), "{1: None, 2: None}");
}

TEST(ManagerDictFromkeys, TypedResultAndUnhashableKey) {
  Manager m;
  auto d = m.dict<std::string, int>();
  auto typed =
      d.fromkeys(std::vector<std::string>{"a", "b", "a"}, 1).to<std::map<std::string, int>>();
  EXPECT_EQ(typed, (std::map<std::string, int>{{"a", 1}, {"b", 1}}));
  EXPECT_THROW((void)DictProxy<>::fromkeys(std::vector<Object>{Object::list({1})}), TypeError);
}

}  // namespace
}  // namespace mproc
