// DictProxy / managed::Dict (issue 6; parity 7.1 test_dict, test_dict_iter, test_dict_isinstance
// and 7.4 test_dict).
#include <unistd.h>

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "mproc/container_proxies.h"
#include "mproc/mproc.h"

#include "support.h"

namespace mproc {
namespace {

// The registration sync_manager.cc makes (kept here so these tests need only BaseManager).
BaseManager dict_manager() {
  BaseManager m;
  m.register_type<managed::Dict, Object>("dict");
  m.start();
  return m;
}

TEST(ManagerDict, SetGetCopyKeysValuesItems) {  // 7.1 test_dict
  BaseManager m = dict_manager();
  auto d = m.create<DictProxy<>>("dict", Object());
  for (int i = 0; i < 5; ++i) d[i] = std::string(1, static_cast<char>('a' + i));
  EXPECT_EQ(d.size(), 5u);
  EXPECT_EQ(d.at(2), Object("c"));
  EXPECT_EQ(d.copy(), Object::dict({{0, "a"}, {1, "b"}, {2, "c"}, {3, "d"}, {4, "e"}}));
  EXPECT_EQ(d.keys(), (std::vector<Object>{0, 1, 2, 3, 4}));
  EXPECT_EQ(d.values(), (std::vector<Object>{"a", "b", "c", "d", "e"}));
  EXPECT_EQ(d.items()[1], (std::pair<Object, Object>{1, "b"}));
}

TEST(ManagerDict, MixedKeysPrintAsPython) {  // seed j
  BaseManager m = dict_manager();
  auto d = m.create<DictProxy<>>("dict", Object());
  d[1] = "1";
  d["2"] = 2;
  d[0.25] = None;
  EXPECT_EQ(d.repr(), "{1: '1', '2': 2, 0.25: None}");
}

TEST(ManagerDict, MissingKeyIsKeyError) {
  BaseManager m = dict_manager();
  auto d = m.create<DictProxy<std::string, int>>("dict", Object());
  EXPECT_THROW((void)d.at("x"), KeyError);
  EXPECT_THROW(d.del("x"), KeyError);
  EXPECT_THROW((void)d.pop("x"), KeyError);
  EXPECT_EQ(d.get("x"), std::nullopt);
  EXPECT_EQ(d.get("x", 7), 7);
  EXPECT_EQ(d.pop("x", 8), 8);
}

TEST(ManagerDict, TypedProxyConvertsBothWays) {
  BaseManager m = dict_manager();
  auto d = m.create<DictProxy<std::string, int>>("dict", Object());
  d["a"] = 1;
  d.set("b", 2);
  int a = d["a"];
  EXPECT_EQ(a, 1);
  EXPECT_TRUE(d.contains("b"));
  EXPECT_FALSE(d.contains("c"));
  EXPECT_EQ((d.copy().to<std::map<std::string, int>>()),
            (std::map<std::string, int>{{"a", 1}, {"b", 2}}));
  d.del("a");
  EXPECT_EQ(d.keys(), std::vector<std::string>{"b"});
}

TEST(ManagerDict, PopitemIsLifo) {  // 7.4 test_dict
  BaseManager m = dict_manager();
  auto d = m.create<DictProxy<std::string, int>>("dict", Object::dict({{"foo", 5}, {"bar", 6}}));
  EXPECT_EQ(d.popitem(), (std::pair<std::string, int>{"bar", 6}));
  EXPECT_EQ(d.popitem(), (std::pair<std::string, int>{"foo", 5}));
  EXPECT_THROW((void)d.popitem(), KeyError);
}

TEST(ManagerDict, GetSetdefaultUpdatePopClear) {  // 7.4 test_dict
  BaseManager m = dict_manager();
  auto d = m.create<DictProxy<std::string, int>>("dict", Object::dict({{"foo", 5}}));
  EXPECT_EQ(d.setdefault("foo", 1), 5);
  EXPECT_EQ(d.setdefault("bar", 6), 6);
  d.update(std::map<std::string, int>{{"baz", 7}});
  d.update(std::vector<std::pair<std::string, int>>{{"qux", 8}});
  EXPECT_EQ(d.size(), 4u);
  EXPECT_EQ(d.pop("baz"), 7);
  EXPECT_EQ(d.reversed(), (std::vector<std::string>{"qux", "bar", "foo"}));
  d.clear();
  EXPECT_TRUE(d.empty());
}

TEST(ManagerDict, OrAssignKeepsProxyOrReturnsPlainDict) {  // 7.4 test_dict: |=, |
  BaseManager m = dict_manager();
  auto d = m.create<DictProxy<std::string, int>>("dict", Object::dict({{"foo", 5}}));
  const auto& same = (d |= std::map<std::string, int>{{"bar", 6}});
  EXPECT_EQ(&same, &d);
  EXPECT_EQ(d.size(), 2u);
  Object right = d | std::map<std::string, int>{{"foo", 1}, {"baz", 7}};
  EXPECT_EQ(right, Object::dict({{"foo", 1}, {"bar", 6}, {"baz", 7}}));
  Object left = std::map<std::string, int>{{"foo", 1}, {"baz", 7}} | d;
  EXPECT_EQ(left, Object::dict({{"baz", 7}, {"foo", 5}, {"bar", 6}}));
  EXPECT_EQ(d.size(), 2u);  // `|` left the server's dict alone
}

TEST(ManagerDict, IterationYieldsKeysInOrder) {  // 7.1 test_dict_iter
  BaseManager m = dict_manager();
  auto d = m.create<DictProxy<int, int>>("dict", Object::dict({{3, 9}, {1, 1}, {2, 4}}));
  std::vector<int> keys;
  for (int k : d) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<int>{3, 1, 2}));
}

TEST(ManagerDict, IterationAfterClearIsAnError) {  // 7.1 test_dict_iter: RuntimeError
  BaseManager m = dict_manager();
  auto d = m.create<DictProxy<int, int>>("dict", Object::dict({{1, 1}, {2, 4}}));
  auto it = d.begin();
  EXPECT_EQ(*it, 1);
  d.clear();
  EXPECT_THROW(++it, Error);
}

TEST(ManagerDict, MethodCoverage) {  // 7.1 test_dict_isinstance [ADAPT]: the MutableMapping set
  BaseManager m = dict_manager();
  auto d = m.create<DictProxy<>>("dict", Object());
  auto names = managed::Dict::exposed_methods();
  std::vector<std::string> exposed;
  for (const auto& method : names) exposed.emplace_back(method.name);
  for (const char* want :
       {"getitem", "setitem", "delitem", "contains", "len", "get", "keys", "values", "items", "pop",
        "popitem", "setdefault", "update", "clear", "copy", "reversed", "iter_key", "repr"}) {
    EXPECT_NE(std::find(exposed.begin(), exposed.end(), want), exposed.end()) << want;
  }
  EXPECT_THROW((void)d.call_encoded("no_such_method", ""), AttributeError);
}

TEST(ManagerDict, ChildChangesAreSeenByParent) {  // seed j across processes
  BaseManager m = dict_manager();
  auto d = m.create<DictProxy<>>("dict", Object());
  auto r = test::fork_and_wait([&] {
    d[1] = "1";
    d["2"] = 2;
    return 0;
  });
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(d.repr(), "{1: '1', '2': 2}");
}

TEST(ManagerDict, SetdefaultHasOneWinnerPerKeyAcrossProcesses) {  // atomic in the server
  BaseManager m = dict_manager();
  auto d = m.create<DictProxy<std::string, int>>("dict", Object());
  constexpr int kKeys = 100;
  // Each child exits with the number of keys its own setdefault inserted.
  auto body = [&] {
    const int me = static_cast<int>(getpid());
    int wins = 0;
    for (int i = 0; i < kKeys; ++i)
      if (d.setdefault("k" + std::to_string(i), me) == me) ++wins;
    return wins;
  };
  pid_t a = test::fork_child(body);
  pid_t b = test::fork_child(body);
  const int wins = test::wait_child(a).code + test::wait_child(b).code;
  EXPECT_EQ(wins, kKeys);
  EXPECT_EQ(d.size(), static_cast<std::size_t>(kKeys));
}

}  // namespace
}  // namespace mproc
