// ValueProxy / managed::Value (issue 6; parity 7.4 test_value; seed i).
#include <sys/types.h>

#include <string>

#include <gtest/gtest.h>

#include "mproc/container_proxies.h"
#include "mproc/mproc.h"

#include "support.h"

namespace mproc {
namespace {

// The registration sync_manager.cc makes (kept here so these tests need only BaseManager).
BaseManager value_manager() {
  BaseManager m;
  m.register_type<managed::Value, Object>("Value");
  m.start();
  return m;
}

TEST(ManagerValue, ValueGetSetVisibleToParent) {  // 7.4 test_value
  BaseManager m = value_manager();
  auto v = m.create<ValueProxy<int>>("Value", Object(1));
  EXPECT_EQ(v.value(), 1);
  EXPECT_EQ(v.get(), 1);
  auto r = test::fork_and_wait([&] {
    if (v.get() != 1) return 1;
    v.set(2);
    return 0;
  });
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(v.value(), 2);
}

TEST(ManagerValue, StringAppendInChild) {  // seed i
  BaseManager m = value_manager();
  auto v = m.create<ValueProxy<std::string>>("Value", Object("Hello"));
  auto r = test::fork_and_wait([&] {
    v += ", World!";
    return 0;
  });
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(v.value(), "Hello, World!");
}

TEST(ManagerValue, PlusAssignLosesNoUpdateAcrossProcesses) {  // atomic read-modify-write
  BaseManager m = value_manager();
  auto v = m.create<ValueProxy<int>>("Value", Object(0));
  constexpr int kN = 500;
  auto body = [&] {
    for (int i = 0; i < kN; ++i) v += 1;
    return 0;
  };
  pid_t a = test::fork_child(body);
  pid_t b = test::fork_child(body);
  EXPECT_EQ(test::wait_child(a).code, 0);
  EXPECT_EQ(test::wait_child(b).code, 0);
  EXPECT_EQ(v.value(), 2 * kN);
}

TEST(ManagerValue, IaddReturnsNewValueAndOtherOps) {
  BaseManager m = value_manager();
  auto v = m.create<ValueProxy<double>>("Value", Object(1.5));
  EXPECT_EQ(v.iadd(1), 2.5);
  v -= 0.5;
  v *= 3;
  EXPECT_EQ(v.get(), 6.0);
}

TEST(ManagerValue, AddOfWrongTypeIsTypeError) {
  BaseManager m = value_manager();
  auto v = m.create<ValueProxy<std::string>>("Value", Object("a"));
  EXPECT_THROW(v += 1, TypeError);
  EXPECT_EQ(v.get(), "a");
}

TEST(ManagerValue, ReadingAsAnotherTypeIsTypeError) {
  BaseManager m = value_manager();
  auto v = m.create<ValueProxy<std::string>>("Value", Object(3));
  EXPECT_THROW((void)v.get(), TypeError);
}

}  // namespace
}  // namespace mproc
