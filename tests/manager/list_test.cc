// ListProxy / managed::List (issue 6; parity 7.1 test_list, test_list_isinstance, test_list_iter
// and 7.4 test_list).
#include <algorithm>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "mproc/container_proxies.h"
#include "mproc/mproc.h"

#include "support.h"

namespace mproc {
namespace {

// The registration sync_manager.cc makes (kept here so these tests need only BaseManager).
BaseManager list_manager() {
  BaseManager m;
  m.register_type<managed::List, Object>("list");
  m.start();
  return m;
}

ListProxy<int> int_list(BaseManager& m, std::vector<int> items) {
  return m.create<ListProxy<int>>("list", Object::from(items));
}

TEST(ManagerList, SliceExtendIndexMulAdd) {  // 7.1 test_list
  BaseManager m = list_manager();
  auto a = int_list(m, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  EXPECT_EQ(a.slice(2, 5), (std::vector<int>{2, 3, 4}));
  EXPECT_EQ(a.slice(std::nullopt, std::nullopt, -3), (std::vector<int>{9, 6, 3, 0}));
  auto b = int_list(m, {5});
  b.extend(std::vector<int>{6, 7});
  EXPECT_EQ(b.copy(), (std::vector<int>{5, 6, 7}));
  EXPECT_EQ(b[-1].get(), 7);
  b *= 2;
  EXPECT_EQ(b.copy(), (std::vector<int>{5, 6, 7, 5, 6, 7}));
  std::vector<int> plus = b + std::vector<int>{8};
  EXPECT_EQ(plus.back(), 8);
  EXPECT_EQ(b.size(), 6u);  // `+` made a plain vector; the proxy's list is unchanged
  b.del_slice(2, std::nullopt);
  EXPECT_EQ(b.copy(), (std::vector<int>{5, 6}));
}

TEST(ManagerList, InPlaceOperatorsKeepProxyOthersArePlain) {  // 7.4 test_list
  BaseManager m = list_manager();
  auto l = int_list(m, {5, 1, 3});
  const auto& same = (l += std::vector<int>{7});
  EXPECT_EQ(&same, &l);
  const auto& same2 = (l *= 2);
  EXPECT_EQ(&same2, &l);
  EXPECT_EQ(l.size(), 8u);
  std::vector<int> twice = l * 2;
  std::vector<int> twice2 = 2 * l;
  EXPECT_EQ(twice.size(), 16u);
  EXPECT_EQ(twice, twice2);
  EXPECT_EQ(l.count(5), 2);
  EXPECT_EQ(l.index(3), 2);
  EXPECT_EQ(l.index(5, 1), 4);
  l.sort();
  EXPECT_EQ(l.copy(), (std::vector<int>{1, 1, 3, 3, 5, 5, 7, 7}));
  l.reverse();
  EXPECT_EQ(l.pop(0), 7);
  l.clear();
  EXPECT_TRUE(l.empty());
}

TEST(ManagerList, ErrorsAsPython) {
  BaseManager m = list_manager();
  auto l = int_list(m, {1});
  EXPECT_THROW((void)l.at(5), IndexError);
  EXPECT_THROW(l.remove(9), ValueError);
  EXPECT_THROW((void)l.index(9), ValueError);
  EXPECT_THROW((void)l.slice(0, 1, 0), ValueError);
  l.clear();
  EXPECT_THROW((void)l.pop(), IndexError);
}

TEST(ManagerList, SortOfUnorderableItemsIsTypeErrorAndKeepsList) {
  BaseManager m = list_manager();
  auto l = m.create<ListProxy<>>("list", Object::list({3, "a", 1}));
  EXPECT_THROW(l.sort(), TypeError);
  EXPECT_EQ(l.repr(), "[3, 'a', 1]");
}

TEST(ManagerList, IterationSeesChangesMadeDuringIt) {  // 7.1 test_list_iter
  BaseManager m = list_manager();
  auto l = int_list(m, {0, 1, 2, 3});
  auto it = l.begin();
  EXPECT_EQ(*it, 0);
  l.set(1, 10);
  ++it;
  EXPECT_EQ(*it, 10);
  std::vector<int> all(l.begin(), l.end());
  EXPECT_EQ(all, (std::vector<int>{0, 10, 2, 3}));
  auto done = l.begin();
  for (int i = 0; i < 4; ++i) ++done;
  EXPECT_EQ(done, l.end());  // an exhausted iterator yields nothing more
}

TEST(ManagerList, MethodCoverage) {  // 7.1 test_list_isinstance [ADAPT]
  std::vector<std::string> exposed;
  for (const auto& method : managed::List::exposed_methods()) exposed.emplace_back(method.name);
  for (const char* want : {"contains", "delitem", "getitem", "len", "setitem", "append", "clear",
                           "count", "extend", "index", "insert", "pop", "remove", "reverse", "sort",
                           "imul", "getslice", "delslice", "iter_item"}) {
    EXPECT_NE(std::find(exposed.begin(), exposed.end(), want), exposed.end()) << want;
  }
}

TEST(ManagerList, ChildReversesRangeList) {  // seed j
  BaseManager m = list_manager();
  auto l =
      m.create<ListProxy<>>("list", Object::from(std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  auto r = test::fork_and_wait([&] {
    l.reverse();
    return 0;
  });
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(l.repr(), "[9, 8, 7, 6, 5, 4, 3, 2, 1, 0]");
}

TEST(ManagerList, AppendIsAtomicAcrossProcesses) {
  BaseManager m = list_manager();
  auto l = int_list(m, {});
  auto body = [&] {
    for (int i = 0; i < 200; ++i) l.append(i);
    return 0;
  };
  pid_t a = test::fork_child(body);
  pid_t b = test::fork_child(body);
  EXPECT_EQ(test::wait_child(a).code, 0);
  EXPECT_EQ(test::wait_child(b).code, 0);
  EXPECT_EQ(l.size(), 400u);
}

}  // namespace
}  // namespace mproc
