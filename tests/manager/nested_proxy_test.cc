// Proxies stored inside managed containers (Python's nested proxies; parity 7.1 test_list,
// test_list_proxy_in_list, test_dict_proxy_nested, test_nested_queue): they come back as proxies
// to the same objects, and the server keeps an object alive while a container holds it.
#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "mproc/mproc.h"

#include "support.h"

namespace mproc {
namespace {

using namespace std::chrono_literals;

TEST(ManagerNestedProxy, ListOfProxiesGivesBackProxiesToTheSameObjects) {  // test_list
  Manager m;
  auto inner = m.list<int>(std::vector{1, 2});
  auto outer = m.list<ListProxy<int>>();
  outer.append(inner);
  ListProxy<int> back = outer.at(0);
  EXPECT_EQ(back, inner);
  back.append(3);  // appending through the inner proxy is visible through the outer one
  EXPECT_EQ(outer.at(0).copy(), (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(inner.copy(), (std::vector<int>{1, 2, 3}));
}

TEST(ManagerNestedProxy, ItemsOfAListOfListProxiesChangeIndependently) {  // list_proxy_in_list
  Manager m;
  auto a = m.list<ListProxy<int>>();
  for (int i = 0; i < 3; ++i) a.append(m.list<int>(std::vector{0, 1, 2}));
  a.at(0)[-1] = 55;
  EXPECT_EQ(a.at(0).copy(), (std::vector<int>{0, 1, 55}));
  EXPECT_EQ(a.at(1).copy(), (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(a.at(1).pop(), 2);
  EXPECT_EQ(a.at(1).size(), 2u);
  EXPECT_EQ(a.at(2).size(), 3u);
}

TEST(ManagerNestedProxy, SelfReferenceThenDeleteNeitherHangsNorCrashes) {  // list_proxy_in_list
  Manager m;
  {
    auto b = m.list();
    b.append(b.to_object());
    EXPECT_EQ(b.size(), 1u);
  }  // `del b`: the server keeps the cycle (no collector), and nothing hangs
  EXPECT_EQ(m.list<int>(std::vector{1}).size(), 1u);  // the server still serves
}

TEST(ManagerNestedProxy, WritesThroughANestedPathAreVisible) {  // test_dict_proxy_nested
  Manager m;
  auto pets = m.dict<std::string, std::string>();
  auto supplies = m.dict<std::string, int>();
  auto outer = m.dict<std::string, Object>();
  outer["pets"] = pets.to_object();
  outer["supplies"] = supplies.to_object();
  outer.at("supplies").to<DictProxy<std::string, int>>()["water"] = 7;
  EXPECT_EQ(supplies.at("water"), 7);
}

TEST(ManagerNestedProxy, ReferentsLiveWhileAContainerHoldsThem) {  // test_dict_proxy_nested
  Manager m;
  auto outer = m.dict<std::string, Object>();
  {
    auto inner = m.list<int>(std::vector{4, 5});
    outer["inner"] = inner.to_object();
  }  // the only local proxy is gone; the dict still references the list
  auto inner = outer.at("inner").to<ListProxy<int>>();
  EXPECT_EQ(inner.copy(), (std::vector<int>{4, 5}));
}

TEST(ManagerNestedProxy, ClearingTheOuterKeepsInnerObjectsWithLocalProxies) {  // dict_nested
  Manager m;
  auto outer = m.dict<std::string, Object>();
  auto inner = m.list<int>(std::vector{1});
  outer["inner"] = inner.to_object();
  std::size_t with_outer = m.number_of_objects();
  outer.clear();
  EXPECT_EQ(inner.copy(), (std::vector<int>{1}));
  EXPECT_EQ(m.number_of_objects(), with_outer);  // nothing was released: both still referenced
}

TEST(ManagerNestedProxy, ReleasingTheContainerReleasesWhatOnlyItHeld) {
  Manager m;
  {
    auto outer = m.list<ListProxy<int>>();
    outer.append(m.list<int>(std::vector{1}));
    EXPECT_EQ(m.number_of_objects(), 2u);
  }
  EXPECT_EQ(m.number_of_objects(), 0u);
}

TEST(ManagerNestedProxy, PlainListsInsideAListProxyComeBackPlain) {  // test_dict_proxy_nested
  Manager m;
  auto l = m.list();
  l.append(Object::list({1, 2}));
  Object back = l.at(0);
  EXPECT_TRUE(back.is_list());
}

TEST(ManagerNestedProxy, QueueProxyStoredInAListOrDictWorks) {  // test_nested_queue
  Manager m;
  auto q = m.Queue<int>();
  auto l = m.list();
  auto d = m.dict<std::string, Object>();
  l.append(q.to_object());
  d["q"] = q.to_object();
  l.at(0).to<QueueProxy<int>>().put(5);
  d.at("q").to<QueueProxy<int>>().put(6);
  EXPECT_EQ(q.get(5s), 5);
  EXPECT_EQ(q.get(5s), 6);
}

TEST(ManagerNestedProxy, AReferenceToAnObjectTheServerDoesNotHaveIsRefused) {
  Manager m;
  auto l = m.list();
  Object bogus(Reference{"list", m.address().to_string(), m.authkey(), 999'999, nullptr});
  EXPECT_THROW(l.append(bogus), KeyError);
  EXPECT_EQ(l.size(), 0u);
}

}  // namespace
}  // namespace mproc
