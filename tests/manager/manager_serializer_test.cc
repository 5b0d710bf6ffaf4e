// The manager's pluggable serializer (issue 6; parity 7.3 test_remote [ADAPT]): Python's
// `BaseManager(address, authkey, serializer='xmlrpclib')` is ManagerOptions::serializer =
// Serializer::kText here. First the text form itself, then managers using it.
#include "mproc/manager_serializer.h"

#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "mproc/envelope.h"
#include "mproc/mproc.h"
#include "mproc/sync_manager.h"

#include "remote_values.h"
#include "support.h"

// A type with only a Boost serialize member: the binary serializer carries it, the text one not.
struct Opaque {
  int n = 0;
  std::string s;
  template <class Ar>
  void serialize(Ar& ar, unsigned /*version*/) {
    ar& n& s;
  }
};

struct Ledger {
  void add(std::string name, double amount) {
    std::lock_guard g(m);
    totals[name] += amount;
  }
  std::map<std::string, double> all() const {
    std::lock_guard g(m);
    return totals;
  }
  void store(Opaque o) {
    std::lock_guard g(m);
    last = o.s;
  }
  std::string last_stored() const {
    std::lock_guard g(m);
    return last;
  }
  mutable std::mutex m;
  std::map<std::string, double> totals;
  std::string last;
};
MPROC_PROXY(Ledger, add, all, store, last_stored);

namespace mproc {
namespace {

using namespace std::chrono_literals;

// ---- the text form

TEST(TextForm, WritesEachKindAsDocumented) {
  EXPECT_EQ(encode_text(Object::tuple({"hi", None, 2.5})), "t3:s2:hiNf2.5;");
  EXPECT_EQ(encode_text(Object(true)), "T");
  EXPECT_EQ(encode_text(Object(false)), "F");
  EXPECT_EQ(encode_text(Object(-42)), "i-42;");
  EXPECT_EQ(encode_text(Object(0.1)), "f0.1;");
  EXPECT_EQ(encode_text(Object::bytes(std::string_view("\xe5\x00\x7f", 3))), "b3:e5007f");
  EXPECT_EQ(encode_text(Object::list({1, Object::list()})), "l2:i1;l0:");
  EXPECT_EQ(encode_text(Object::dict({{"k", 1}, {2, None}})), "d2:s1:ki1;i2;N");
}

// No host-order binary integers: a message of ASCII values is printable ASCII, numbers are
// decimal, and the same value gives the same bytes whatever the machine.
TEST(TextForm, IsPrintableTextWithDecimalNumbers) {
  Object v = Object::tuple({258, std::int64_t{1} << 40, -1.5, "abc", Object::bytes("\x01\x02"),
                            Object::list({true, None})});
  std::string t = encode_text(v);
  for (unsigned char c : t) EXPECT_TRUE(c >= 0x20 && c < 0x7f) << "byte " << int(c);
  EXPECT_EQ(t, "t6:i258;i1099511627776;f-1.5;s3:abcb2:0102l2:TN");
}

TEST(TextForm, RoundTripsEveryKind) {
  const double inf = std::numeric_limits<double>::infinity();
  std::string all_bytes;
  for (int i = 0; i < 256; ++i) all_bytes += static_cast<char>(i);
  Object v = Object::list({
      None,
      true,
      false,
      std::numeric_limits<std::int64_t>::min(),
      std::numeric_limits<std::int64_t>::max(),
      0.1,
      -0.0,
      inf,
      -inf,
      1e300,
      std::numeric_limits<double>::denorm_min(),
      "",
      "hall\u00e5 v\u00e4rld \u043f\u0440\u0438\u0432\u0456\u0442",
      std::string("nul\0inside", 10),
      Object::bytes(all_bytes),
      Object::list(),
      Object::tuple({1, Object::tuple({"x"})}),
      Object::dict({{1, "int key"}, {"s", Object::list({2.5})}, {Object::tuple({1, 2}), None}}),
  });
  Object back = decode_text(encode_text(v));
  EXPECT_EQ(back, v);
  EXPECT_EQ(back.repr(), v.repr());  // kinds kept: a tuple stays a tuple, -0.0 stays -0.0
  EXPECT_TRUE(std::isnan(decode_text(encode_text(Object(std::nan("")))).as_float()));
}

TEST(TextForm, RefusesAProxyReference) {
  Object ref(Reference{"dict", "somewhere", std::nullopt, 7, nullptr});
  EXPECT_THROW((void)encode_text(Object::list({ref})), SerializationError);
  std::string out = "kept";
  EXPECT_THROW(encode_text_into(ref, out), SerializationError);
  EXPECT_EQ(out, "kept");
}

TEST(TextForm, RejectsMalformedText) {
  for (std::string bad : {"", "x", "i12", "i1x;", "f;", "s5:abc", "s99999999999:ab", "b1:zz",
                          "b2:ab", "l2:N", "d1:l0:N", "NN", "T ", "i+1;", "l-1:"}) {
    EXPECT_THROW((void)decode_text(bad), SerializationError) << "'" << bad << "'";
  }
  std::string deep;
  for (int i = 0; i < 5000; ++i) deep += "l1:";
  deep += "N";
  EXPECT_THROW((void)decode_text(deep), SerializationError);
}

TEST(TextPayload, CarriesTypesWithAnObjectForm) {
  using Args = std::tuple<int, std::string, std::optional<double>, std::vector<std::string>,
                          std::map<std::string, std::int64_t>, bool>;
  static_assert(detail::text_portable_v<Args>);
  static_assert(!detail::text_portable_v<Opaque>);
  static_assert(!detail::text_portable_v<std::tuple<int, Opaque>>);
  static_assert(!detail::text_portable_v<QueueProxy<int>>);
  Args args{-7, "s", 0.5, {"ab"}, {{"a", 1}}, true};
  std::string text = detail::encode_payload(args, Serializer::kText);
  EXPECT_EQ(text, "t6:i-7;s1:sf0.5;l1:s2:abd1:s1:ai1;T");
  EXPECT_EQ(detail::decode_payload<Args>(text, Serializer::kText), args);
}

TEST(TextPayload, RefusesTypesWithoutAnObjectFormNamingThem) {
  try {
    (void)detail::encode_payload(Opaque{}, Serializer::kText);
    FAIL() << "no exception";
  } catch (const SerializationError& e) {
    EXPECT_NE(std::string(e.what()).find("Opaque"), std::string::npos) << e.what();
  }
  EXPECT_THROW((void)detail::decode_payload<Opaque>("N", Serializer::kText), SerializationError);
  // Text that is not the type asked for.
  EXPECT_THROW((void)detail::decode_payload<std::tuple<int>>("t1:s1:x", Serializer::kText),
               SerializationError);
}

// ---- managers

// The local tests come first: the TCP tests below leave server threads behind in this process
// (blocked on the connections cached by its clients), and a Manager forks its server.
// A local (Unix address, shared-memory channel) manager with the text serializer: the standard
// containers and queues work; the Pool, whose tasks are binary, is refused.
TEST(ManagerTextSerializer, LocalSyncManagerContainersWorkAndPoolIsRefused) {
  Manager manager({.serializer = Serializer::kText});
  auto d = manager.dict<std::string, std::vector<int>>();
  d.set("a", {1, 2, 3});
  EXPECT_EQ(d.get("a"), (std::vector<int>{1, 2, 3}));
  auto l = manager.list<Object>();
  l.append(Object::list(test::cpython_remote_values()));
  EXPECT_EQ(l.at(0), Object::list(test::cpython_remote_values()));
  auto q = manager.Queue<std::tuple<int, std::string>>();
  q.put({1, "one"});
  EXPECT_EQ(q.get(10s), std::make_tuple(1, std::string("one")));
  auto lock = manager.Lock();
  EXPECT_TRUE(lock.acquire());
  lock.release();
  EXPECT_THROW((void)manager.Pool(1), ValueError);
  // A nested proxy (an Object Reference) has no text form.
  EXPECT_THROW(l.append(manager.dict().to_object()), SerializationError);
  EXPECT_EQ(l.size(), 1u);
}

TEST(ManagerTextSerializer, EveryOtherStandardProxyWorks) {
  Manager manager({.serializer = Serializer::kText});
  auto v = manager.Value(2.5);
  v.set(-1.25);
  EXPECT_EQ(v.get(), -1.25);
  auto a = manager.Array<std::int64_t>(std::vector<std::int64_t>{1, 2, 3});
  a.set(1, 20);
  EXPECT_EQ(a.at(1), 20);
  auto s = manager.set<std::string>();
  s.add("x");
  s.add("x");
  EXPECT_EQ(s.size(), 1u);
  auto ns = manager.Namespace();
  ns.set("answer", 42);
  EXPECT_EQ(ns.get<int>("answer"), 42);
  auto l = manager.list<int>(std::vector<int>{0, 1, 2, 3, 4});
  EXPECT_EQ(l.slice(1, 4), (std::vector<int>{1, 2, 3}));
  auto e = manager.Event();
  e.set();
  EXPECT_TRUE(e.is_set());
  auto sem = manager.BoundedSemaphore(2);
  EXPECT_TRUE(sem.acquire(true, 5.0));
  sem.release();
  auto rlock = manager.RLock();
  EXPECT_TRUE(rlock.acquire(5s));
  rlock.release();
  auto c = manager.Condition();
  EXPECT_TRUE(c.acquire());
  c.notify_all();
  c.release();
  auto b = manager.Barrier(3, 5.0);
  EXPECT_EQ(b.parties(), 3);
  auto jq = manager.JoinableQueue<std::vector<double>>();
  jq.put({0.5, 1e-300});
  EXPECT_EQ(jq.get(10s), (std::vector<double>{0.5, 1e-300}));
  jq.task_done();
  EXPECT_TRUE(jq.join(10s));
}

TEST(ManagerBinarySerializer, LocalDefaultManagerStillWorks) {
  Manager manager;
  EXPECT_EQ(manager.serializer(), Serializer::kBinary);
  auto q = manager.Queue<Opaque>();
  q.put(Opaque{5, "five"});
  Opaque got = q.get(10s);
  EXPECT_EQ(got.n, 5);
  EXPECT_EQ(got.s, "five");
  auto l = manager.list<int>();
  for (int i = 0; i < 100; ++i) l.append(i);  // many calls through the shared channel
  EXPECT_EQ(l.size(), 100u);
}

// A TCP server on 127.0.0.1, port 0, a random 32-byte key, serving one queue from a thread of
// this process, so that the test reads what arrived in the server's own queue object.
class TextServer {
 public:
  explicit TextServer(Serializer serializer = Serializer::kText) {
    BaseManager m(
        {.address = TcpAddress{"127.0.0.1", 0}, .authkey = key, .serializer = serializer});
    m.register_callable<managed::Queue>("get_queue", [q = queue] { return q; });
    m.register_type<Ledger>("Ledger");
    server_ = std::make_unique<Server>(m.get_server());
    address = server_->address().to_string();
  }
  void serve() {
    thread_ = std::thread([this] { server_->serve_forever(); });
  }
  ~TextServer() {
    server_->stop();
    if (thread_.joinable()) thread_.join();
  }
  TextServer(const TextServer&) = delete;
  TextServer& operator=(const TextServer&) = delete;

  std::string key = test::random_key();
  std::shared_ptr<managed::Queue> queue = std::make_shared<managed::Queue>(0);
  std::string address;

 private:
  std::unique_ptr<Server> server_;
  std::thread thread_;
};

TEST(ManagerTextSerializer, RemoteClientWithOnlyAddressAndKeyPutsMixedValues) {
  TextServer server;
  const std::string address = server.address;
  const std::string key = server.key;
  // Forked before the server thread starts; it connects knowing only the address and the key,
  // with nothing registered (Python's `QueueManager2.register('get_queue')`).
  pid_t child = test::fork_child([address, key] {
    BaseManager client(
        {.address = Address(address), .authkey = key, .serializer = Serializer::kText});
    client.connect();
    client.create<QueueProxy<Object>>("get_queue").put(Object::list(test::cpython_remote_values()));
    return 0;
  });
  server.serve();
  EXPECT_EQ(test::wait_child(child).code, 0);

  // What the server holds is the portable text, and exactly those values.
  std::string item = server.queue->get(true, 10.0);
  Object got = decode_text(item);
  EXPECT_EQ(got, Object::list(test::cpython_remote_values()));
  EXPECT_EQ(got.repr(),
            "['hello world', None, True, 2.25, 'hall\u00e5 v\u00e4rld', "
            "'\u043f\u0440\u0438\u0432\u0456\u0442 \u0441\u0432\u0456\u0442', "
            "b'hall\\xe5 v\\xe4rld']");
  EXPECT_EQ(item.rfind("l7:s11:hello worldNTf2.25;", 0), 0u) << item;
}

TEST(ManagerTextSerializer, UnsupportedValueRaisesAndNothingIsSent) {
  TextServer server;
  server.serve();
  BaseManager client(
      {.address = Address(server.address), .authkey = server.key, .serializer = Serializer::kText});
  client.connect();
  EXPECT_THROW(client.create<QueueProxy<Opaque>>("get_queue").put(Opaque{1, "x"}),
               SerializationError);
  EXPECT_THROW(client.create<Ledger>("Ledger").store(Opaque{1, "x"}), SerializationError);
  EXPECT_EQ(server.queue->qsize(), 0);
}

TEST(ManagerTextSerializer, TypedProxyWithPortableTypesWorks) {
  TextServer server;
  server.serve();
  BaseManager client(
      {.address = Address(server.address), .authkey = server.key, .serializer = Serializer::kText});
  client.connect();
  auto ledger = client.create<Ledger>("Ledger");
  ledger.add("rent", 700.5);
  ledger.add("rent", 0.25);
  ledger.add("food", 12);
  EXPECT_EQ(ledger.all(), (std::map<std::string, double>{{"food", 12.0}, {"rent", 700.75}}));
  EXPECT_EQ(ledger.serializer(), Serializer::kText);
  // A proxy sent to another process (here: through its wire form) keeps the serializer.
  auto copy = decode<Proxy<Ledger>>(encode(ledger));
  EXPECT_EQ(copy.serializer(), Serializer::kText);
  EXPECT_EQ(copy.all().at("food"), 12.0);
}

TEST(ManagerTextSerializer, ClientWithOtherSerializerGetsClearErrorAndServerStaysUp) {
  TextServer server;
  server.serve();
  BaseManager binary({.address = Address(server.address), .authkey = server.key});
  try {
    binary.connect();
    FAIL() << "a binary client was accepted by a text server";
  } catch (const SerializationError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("'text'"), std::string::npos) << what;
    EXPECT_NE(what.find("'binary'"), std::string::npos) << what;
  }
  BaseManager text(
      {.address = Address(server.address), .authkey = server.key, .serializer = Serializer::kText});
  text.connect();
  auto q = text.create<QueueProxy<std::string>>("get_queue");
  q.put("still serving");
  EXPECT_EQ(q.get(10s), "still serving");
}

TEST(ManagerTextSerializer, TextClientOfBinaryServerIsRefused) {
  TextServer server(Serializer::kBinary);
  server.serve();
  BaseManager text(
      {.address = Address(server.address), .authkey = server.key, .serializer = Serializer::kText});
  EXPECT_THROW(text.connect(), SerializationError);
  BaseManager binary({.address = Address(server.address), .authkey = server.key});
  binary.connect();
  auto ledger = binary.create<Ledger>("Ledger");
  ledger.store(Opaque{3, "opaque travels in binary"});  // the default carries any serializable type
  EXPECT_EQ(ledger.last_stored(), "opaque travels in binary");
}

// The hello is what lets the server tell the serializers apart: a payload request before it is
// refused (a control request, which carries no payload, is not).
TEST(ManagerTextSerializer, PayloadRequestBeforeTheHelloIsRefused) {
  TextServer server;
  server.serve();
  Connection c = Client(Address(server.address), server.key);
  c.send_bytes(std::string("C\x09\x00", 3) + "get_queue");  // protocol.h's create request
  std::string reply = c.recv_bytes(Deadline::after(10s));
  ASSERT_FALSE(reply.empty());
  ASSERT_EQ(reply[0], 'E');
  EXPECT_THROW(rethrow_remote(std::string_view(reply).substr(1)), SerializationError);
  c.send_bytes(std::string_view("N"));  // count: no payload
  reply = c.recv_bytes(Deadline::after(10s));
  ASSERT_FALSE(reply.empty());
  EXPECT_EQ(reply[0], 'K');
}

}  // namespace
}  // namespace mproc
