// SetProxy / managed::Set (issue 6; parity 7.4 test_set, test_set_init,
// test_set_contain_all_method).
#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "mproc/container_proxies.h"
#include "mproc/mproc.h"

#include "support.h"

namespace mproc {
namespace {

// Set is not registered by SyncManager yet; this is the line it would add.
BaseManager set_manager() {
  BaseManager m;
  m.register_type<managed::Set, Object>("set");
  m.start();
  return m;
}

std::set<int> sorted(const std::vector<int>& v) { return {v.begin(), v.end()}; }

TEST(ManagerSet, OperatorsInBothFormsInPlaceKeepsProxy) {  // 7.4 test_set
  BaseManager m = set_manager();
  auto s = m.create<SetProxy<int>>("set", Object::list({1, 2, 3}));
  std::vector<int> other{3, 4};
  EXPECT_EQ(sorted(s | other), (std::set<int>{1, 2, 3, 4}));
  EXPECT_EQ(sorted(s & other), (std::set<int>{3}));
  EXPECT_EQ(sorted(s - other), (std::set<int>{1, 2}));
  EXPECT_EQ(sorted(s ^ other), (std::set<int>{1, 2, 4}));
  const auto& same = (s |= other);
  EXPECT_EQ(&same, &s);
  EXPECT_EQ(s.size(), 4u);
  s &= std::vector<int>{1, 2, 3};
  s -= std::vector<int>{1};
  s ^= std::vector<int>{3, 9};
  EXPECT_EQ(sorted(s.copy()), (std::set<int>{2, 9}));
}

TEST(ManagerSet, MethodsAsPython) {  // 7.4 test_set
  BaseManager m = set_manager();
  auto s = m.create<SetProxy<int>>("set", Object());
  s.add(1);
  s.add(1);
  s.add(2);
  EXPECT_EQ(s.size(), 2u);
  s.remove(1);
  EXPECT_THROW(s.remove(1), KeyError);
  s.discard(1);
  EXPECT_EQ(s.pop(), 2);
  EXPECT_THROW((void)s.pop(), KeyError);
  s.update(std::vector<int>{1, 2, 3});
  EXPECT_TRUE(s.isdisjoint(std::vector<int>{7}));
  EXPECT_TRUE(s.issubset(std::vector<int>{1, 2, 3, 4}));
  EXPECT_TRUE(s.issuperset(std::vector<int>{1, 3}));
  EXPECT_TRUE((s < std::vector<int>{1, 2, 3, 4}));
  EXPECT_FALSE((s < std::vector<int>{1, 2, 3}));
  EXPECT_TRUE((s <= std::vector<int>{1, 2, 3}));
  EXPECT_TRUE((s > std::vector<int>{1, 2}));
  EXPECT_TRUE((s >= std::vector<int>{1, 2, 3}));
  EXPECT_EQ(sorted(s.intersection(std::vector<int>{2, 5})), (std::set<int>{2}));
}

TEST(ManagerSet, InitFromListSetAndDictKeys) {  // 7.4 test_set_init
  BaseManager m = set_manager();
  auto a = m.create<SetProxy<int>>("set", Object::list({1, 2, 2}));
  auto b = m.create<SetProxy<int>>("set", Object::from(std::set<int>{1, 2}));
  auto c = m.create<SetProxy<int>>("set", Object::dict({{1, "x"}, {2, "y"}}));
  EXPECT_EQ(sorted(a.copy()), sorted(b.copy()));
  EXPECT_EQ(sorted(b.copy()), sorted(c.copy()));
  EXPECT_THROW((void)m.create<SetProxy<int>>("set", Object(1234)), TypeError);
}

TEST(ManagerSet, ReprAndIteration) {
  BaseManager m = set_manager();
  auto s = m.create<SetProxy<>>("set", Object());
  EXPECT_EQ(s.repr(), "set()");
  s.add(1);
  s.add("a");
  EXPECT_EQ(s.repr(), "{1, 'a'}");
  std::vector<Object> items(s.begin(), s.end());
  EXPECT_EQ(items.size(), 2u);
  auto it = s.begin();
  s.add(5);
  EXPECT_THROW(++it, Error);
}

TEST(ManagerSet, MethodCoverage) {  // 7.4 test_set_contain_all_method [ADAPT]
  std::vector<std::string> exposed;
  for (const auto& method : managed::Set::exposed_methods()) exposed.emplace_back(method.name);
  for (const char* want : {"add",
                           "clear",
                           "contains",
                           "difference",
                           "difference_update",
                           "discard",
                           "intersection",
                           "intersection_update",
                           "isdisjoint",
                           "issubset",
                           "issuperset",
                           "len",
                           "pop",
                           "remove",
                           "symmetric_difference",
                           "symmetric_difference_update",
                           "union",
                           "update",
                           "iter_item",
                           "repr"}) {
    EXPECT_NE(std::find(exposed.begin(), exposed.end(), want), exposed.end()) << want;
  }
}

}  // namespace
}  // namespace mproc
