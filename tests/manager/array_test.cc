// ArrayProxy / managed::Array (issue 6; parity 7.4 test_array).
#include <vector>

#include <gtest/gtest.h>

#include "mproc/container_proxies.h"
#include "mproc/mproc.h"

#include "support.h"

namespace mproc {
namespace {

// The registration sync_manager.cc makes (kept here so these tests need only BaseManager).
BaseManager array_manager() {
  BaseManager m;
  m.register_type<managed::Array, Object>("Array");
  m.start();
  return m;
}

TEST(ManagerArray, IndexLenIteration) {  // 7.4 test_array
  BaseManager m = array_manager();
  auto a = m.create<ArrayProxy<int>>("Array", Object::from(std::vector<int>{0, 1}));
  EXPECT_EQ(a.size(), 2u);
  EXPECT_EQ(a[0].get(), 0);
  EXPECT_EQ(a.at(-1), 1);
  std::vector<int> all(a.begin(), a.end());
  EXPECT_EQ(all, (std::vector<int>{0, 1}));
}

TEST(ManagerArray, ChildWritesAreSeen) {
  BaseManager m = array_manager();
  auto a = m.create<ArrayProxy<int>>("Array", Object::from(std::vector<int>{0, 1, 2}));
  auto r = test::fork_and_wait([&] {
    for (int i = 0; i < 3; ++i) a[i] = -a.at(i) * 10;
    return 0;
  });
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(a.tolist(), (std::vector<int>{0, -10, -20}));
}

TEST(ManagerArray, OutOfRangeIsIndexErrorWrongKindIsTypeError) {
  BaseManager m = array_manager();
  auto a = m.create<ArrayProxy<int>>("Array", Object::from(std::vector<int>{0, 1}));
  EXPECT_THROW((void)a.at(2), IndexError);
  EXPECT_THROW(a.set(5, 1), IndexError);
  auto untyped = m.create<ArrayProxy<Object>>("Array", Object::from(std::vector<int>{0, 1}));
  EXPECT_THROW(untyped.set(0, Object("x")), TypeError);
  auto floats = m.create<ArrayProxy<double>>("Array", Object::from(std::vector<double>{0.5}));
  floats.set(0, 2);  // an int into a 'd' array is converted
  EXPECT_EQ(floats.at(0), 2.0);
}

}  // namespace
}  // namespace mproc
