// A remote client that knows only a server's address and key (issue 6; parity 7.3 test_remote
// [ADAPT]). Python's client declares `QueueManager2.register('get_queue')` without a callable and
// calls `manager.get_queue()`; the C++ client needs no declaration at all: it asks the server
// for the type by name, `create<QueueProxy<Object>>("get_queue")`, and only the server has a
// callable for it.

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <tuple>

#include <gtest/gtest.h>

#include "mproc/mproc.h"
#include "mproc/sync_manager.h"

#include "remote_values.h"
#include "support.h"

namespace mproc {
namespace {

using namespace std::chrono_literals;

struct QueueServer {
  std::string key = test::random_key();
  BaseManager manager{{.address = TcpAddress{"127.0.0.1", 0}, .authkey = key}};
  QueueServer() {
    auto queue = std::make_shared<managed::Queue>(0);
    manager.register_callable<managed::Queue>("get_queue", [queue] { return queue; });
    manager.start();
  }
};

TEST(ManagerRemote, ClientWithOnlyAddressAndKeyPutsAMixedTuple) {
  QueueServer server;
  const std::string address = server.manager.address().to_string();
  const std::string key = server.key;
  auto putter = test::fork_and_wait([address, key] {
    // Nothing registered here: the name is resolved by the server.
    BaseManager client({.address = Address(address), .authkey = key});
    client.connect();
    client.create<QueueProxy<Object>>("get_queue")
        .put(Object::tuple(test::cpython_remote_values()));
    return 0;
  });
  EXPECT_EQ(putter.code, 0);

  BaseManager manager2({.address = Address(address), .authkey = key});
  manager2.connect();
  auto queue = manager2.create<QueueProxy<Object>>("get_queue");
  Object got = queue.get(10s);
  EXPECT_EQ(
      got,
      Object::tuple(
          test::cpython_remote_values()));  // a tuple here (Python's xmlrpc turns it into a list)
  EXPECT_EQ(got.repr(),
            "('hello world', None, True, 2.25, 'hall\u00e5 v\u00e4rld', "
            "'\u043f\u0440\u0438\u0432\u0456\u0442 \u0441\u0432\u0456\u0442', "
            "b'hall\\xe5 v\\xe4rld')");
}

TEST(ManagerRemote, WrongRandomKeyIsRefused) {
  QueueServer server;
  BaseManager intruder({.address = server.manager.address(), .authkey = test::random_key()});
  EXPECT_THROW(intruder.connect(), AuthenticationError);
}

template <class Q, class V>
concept CanPut = requires(const Q& q, const V& v) {
  q.put(v);
};

// Python raises when the serializer cannot encode a value (`queue.put(time.sleep)`). Here a
// value without a wire form does not compile, and an item read as a type it is not fails with a
// SerializationError that says so.
TEST(ManagerRemote, UnsupportedValuesAreRefused) {
  static_assert(CanPut<QueueProxy<Object>, Object>);
  static_assert(!CanPut<QueueProxy<Object>, std::function<void()>>);
  static_assert(!CanPut<QueueProxy<std::tuple<int, std::string>>, Object>);

  QueueServer server;
  BaseManager client({.address = server.manager.address(), .authkey = server.key});
  client.connect();
  client.create<QueueProxy<Object>>("get_queue").put(Object::tuple(test::cpython_remote_values()));
  auto typed = client.create<QueueProxy<std::tuple<int, std::string>>>("get_queue");
  EXPECT_THROW((void)typed.get(10s), SerializationError);
}

}  // namespace
}  // namespace mproc
