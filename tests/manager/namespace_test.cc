// NamespaceProxy / managed::Namespace (issue 6; parity 7.1 test_namespace, 7.4 test_namespace).
#include <string>

#include <gtest/gtest.h>

#include "mproc/container_proxies.h"
#include "mproc/mproc.h"

#include "support.h"

namespace mproc {
namespace {

// The registration sync_manager.cc makes (kept here so these tests need only BaseManager).
BaseManager namespace_manager() {
  BaseManager m;
  m.register_type<managed::Namespace>("Namespace");
  m.start();
  return m;
}

TEST(ManagerNamespace, SetGetDelAttributes) {  // 7.1 test_namespace
  BaseManager m = namespace_manager();
  auto n = m.create<NamespaceProxy>("Namespace");
  n.set("name", "Bob");
  n["job"] = "Builder";
  n.set("_hidden", "bar");
  EXPECT_EQ(n.get<std::string>("name"), "Bob");
  EXPECT_EQ(n.at("job"), Object("Builder"));
  n.del("job");
  EXPECT_THROW((void)n.get("job"), AttributeError);
  EXPECT_THROW(n.del("job"), AttributeError);
}

TEST(ManagerNamespace, ReprShowsOnlyPublicLiveAttributes) {  // 7.1 test_namespace
  BaseManager m = namespace_manager();
  auto n = m.create<NamespaceProxy>("Namespace");
  n.set("name", "Bob");
  n.set("job", "Builder");
  n.set("_hidden", 1);
  n.del("job");
  EXPECT_EQ(n.repr(), "Namespace(name='Bob')");
}

TEST(ManagerNamespace, HasReflectsDeletion) {  // 7.1 test_namespace: hasattr
  BaseManager m = namespace_manager();
  auto n = m.create<NamespaceProxy>("Namespace");
  EXPECT_FALSE(n.has("x"));
  n.set("x", 1);
  EXPECT_TRUE(n.has("x"));
  n.del("x");
  EXPECT_FALSE(n.has("x"));
}

TEST(ManagerNamespace, AttributesSetInParentReadableInChild) {  // 7.4 test_namespace
  BaseManager m = namespace_manager();
  auto n = m.create<NamespaceProxy>("Namespace");
  n.set("x", 20);
  n.set("name", "Bob");
  auto r = test::fork_and_wait(
      [&] { return n.get<int>("x") == 20 && n.get<std::string>("name") == "Bob" ? 0 : 1; });
  EXPECT_EQ(r.code, 0);
}

}  // namespace
}  // namespace mproc
