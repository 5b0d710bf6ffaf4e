// BaseManager: registered types, proxies across processes, the server's lifecycle, remote use and
// failures (issue 6; parity section 7.2, 7.3, 7.5).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "mproc/mproc.h"

#include "support.h"

namespace mproc::test_manager {

class Counter {
 public:
  explicit Counter(int start = 0) : value_(start) {}
  void increment() {
    std::lock_guard lock(mutex_);
    ++value_;
  }
  int value() const {
    std::lock_guard lock(mutex_);
    return value_;
  }
  int add(int n) {
    std::lock_guard lock(mutex_);
    return value_ += n;
  }
  std::size_t size_of(const std::string& s) const { return s.size(); }
  std::string echo(std::string s) const { return s; }
  void fail(const std::string& why) const { throw std::out_of_range(why); }
  void sleep_ms(int ms) const { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

 private:
  mutable std::mutex mutex_;
  int value_;
};

}  // namespace mproc::test_manager

MPROC_PROXY(mproc::test_manager::Counter, increment, value, add, size_of, echo, fail, sleep_ms);

namespace mproc::test_manager {
namespace {

using namespace std::chrono_literals;

void increment_50(Proxy<Counter> counter) {
  for (int i = 0; i < 50; ++i) counter.increment();
}
MPROC_TASK(increment_50);

BaseManager started_manager(ManagerOptions options = {}) {
  BaseManager m(std::move(options));
  m.register_type<Counter, int>("Counter");
  m.start();
  return m;
}

// Whether `pid` runs (a zombie does not: in a container whose init does not reap, an orphan
// stays one).
bool process_exists(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  auto paren = line.rfind(')');
  return paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] != 'Z';
}

bool wait_until_gone(pid_t pid, std::chrono::milliseconds timeout) {
  auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (!process_exists(pid)) return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

TEST(BaseManager, RegisteredTypeRunsItsMethodsInTheServer) {
  BaseManager m = started_manager();
  auto c = m.create<Counter>("Counter", 5);
  c.increment();
  EXPECT_EQ(c.add(10), 16);
  EXPECT_EQ(c.value(), 16);
  EXPECT_EQ(c.echo("hello"), "hello");
  EXPECT_EQ(c.type_name(), "Counter");
}

TEST(BaseManager, ProxyWorksInAForkedChild) {
  BaseManager m = started_manager();
  auto c = m.create<Counter>("Counter", 0);
  auto r = test::fork_and_wait([&] {
    for (int i = 0; i < 10; ++i) c.increment();
    return c.value() == 10 ? 0 : 1;
  });
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(c.value(), 10);
}

TEST(BaseManager, ProxyPassedToPoolTasksIsShared) {  // seed l
  BaseManager m = started_manager();
  auto c = m.create<Counter>("Counter", 0);
  Pool pool(2);
  std::vector<AsyncResult<void>> results;
  for (int i = 0; i < 5; ++i) results.push_back(pool.apply_async(increment_50, c));
  for (auto& r : results) r.get(30s);
  EXPECT_EQ(c.value(), 250);
}

TEST(BaseManager, ConcurrentCallsFromThreadsAreAllApplied) {
  BaseManager m = started_manager();
  auto c = m.create<Counter>("Counter", 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 100; ++i) c.increment();
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.value(), 400);
}

TEST(BaseManager, LargeArgumentsAndResultsTravelWhole) {
  BaseManager m = started_manager();
  auto c = m.create<Counter>("Counter", 0);
  std::string big(1 << 20, 'x');
  big[12345] = 'y';
  EXPECT_EQ(c.size_of(big), big.size());
  EXPECT_EQ(c.echo(big), big);
  EXPECT_EQ(c.echo("small"), "small");  // and the fast path still works after
}

TEST(BaseManager, MethodExceptionIsRethrownAsItself) {
  BaseManager m = started_manager();
  auto c = m.create<Counter>("Counter", 0);
  try {
    c.fail("no such thing");
    FAIL() << "no exception";
  } catch (const std::out_of_range& e) {
    EXPECT_STREQ(e.what(), "no such thing");
  }
  EXPECT_EQ(c.add(1), 1);  // the object is still usable
}

TEST(BaseManager, UnexposedMethodIsAnAttributeError) {
  BaseManager m = started_manager();
  auto c = m.create<Counter>("Counter", 0);
  EXPECT_THROW((void)c.call_encoded("reset", ""), AttributeError);
}

TEST(BaseManager, UnregisteredTypeNameIsNotRegisteredError) {
  BaseManager m = started_manager();
  EXPECT_THROW((void)m.create<Counter>("Nope", 0), NotRegisteredError);
}

TEST(BaseManager, WrongArgumentTypesAreASerializationError) {
  BaseManager m = started_manager();
  EXPECT_THROW((void)m.create<Counter>("Counter", std::string("zero")), SerializationError);
}

TEST(BaseManager, MisuseThrowsProcessError) {
  BaseManager m;
  m.register_type<Counter, int>("Counter");
  EXPECT_THROW((void)m.create<Counter>("Counter", 0), ProcessError);  // not started
  m.start();
  EXPECT_THROW(m.start(), ProcessError);
  EXPECT_THROW(m.register_type<Counter>("Other"), ProcessError);
  EXPECT_THROW((void)m.get_server(), ProcessError);
}

TEST(BaseManager, DefaultConstructedProxyThrowsValueError) {
  Proxy<Counter> nothing;
  EXPECT_FALSE(nothing.bound());
  EXPECT_THROW(nothing.increment(), ValueError);
}

TEST(BaseManager, ShutdownEndsTheServerWithExitCodeZero) {  // parity 7.2 test_mymanager
  BaseManager m = started_manager();
  pid_t server = m.pid();
  EXPECT_TRUE(m.running());
  m.shutdown();
  EXPECT_FALSE(m.running());
  ASSERT_TRUE(m.exitcode().has_value());
  EXPECT_TRUE(*m.exitcode() == 0 || *m.exitcode() == -SIGTERM) << *m.exitcode();
  EXPECT_FALSE(process_exists(server));
  m.shutdown();  // idempotent
}

TEST(BaseManager, DestructorShutsTheServerDown) {  // parity 7.2 test_mymanager_context
  pid_t server = 0;
  {
    BaseManager m = started_manager();
    server = m.pid();
    ASSERT_TRUE(process_exists(server));
  }
  EXPECT_FALSE(process_exists(server));
}

TEST(BaseManager, InitializerRunsOnceInTheServer) {  // parity 7.5
  Value<int> runs(0);
  int parent = ::getpid();
  Value<int> ran_in(0);
  BaseManager m;
  m.register_type<Counter, int>("Counter");
  m.start([&] {
    runs.set(runs.value() + 1);
    ran_in.set(::getpid());
  });
  (void)m.create<Counter>("Counter", 0).value();
  EXPECT_EQ(runs.value(), 1);
  EXPECT_EQ(ran_in.value(), m.pid());
  EXPECT_NE(ran_in.value(), parent);
}

TEST(BaseManager, EmptyInitializerIsATypeError) {  // parity 7.5: start(1) raises TypeError
  BaseManager m;
  EXPECT_THROW(m.start(std::function<void()>()), TypeError);
}

TEST(BaseManager, ObjectsAreReleasedWhenTheirLastProxyGoes) {
  BaseManager m = started_manager();
  EXPECT_EQ(m.number_of_objects(), 0u);
  {
    auto a = m.create<Counter>("Counter", 0);
    auto copy = a;
    auto b = m.create<Counter>("Counter", 0);
    EXPECT_EQ(m.number_of_objects(), 2u);
  }
  EXPECT_EQ(m.number_of_objects(), 0u);
}

TEST(BaseManager, AProxySentToAnotherProcessKeepsItsObjectAlive) {
  BaseManager m = started_manager();
  auto [reader, writer] = Pipe(false);
  pid_t child = test::fork_child([&, &reader = reader] {
    auto c = reader.recv<Proxy<Counter>>();
    c.add(7);
    return 0;
  });
  {
    auto c = m.create<Counter>("Counter", 0);
    writer.send(c);
    EXPECT_EQ(test::wait_child(child).code, 0);
    EXPECT_EQ(c.value(), 7);
  }
  EXPECT_EQ(m.number_of_objects(), 0u);  // the child's reference went with it
}

TEST(BaseManager, DeadServerMakesCallsThrowQuicklyNeverHang) {
  BaseManager m = started_manager();
  auto c = m.create<Counter>("Counter", 0);
  c.increment();
  ASSERT_EQ(::kill(m.pid(), SIGKILL), 0);
  double took = test::seconds_to_run([&] {
    EXPECT_ANY_THROW(c.increment());
    EXPECT_ANY_THROW(c.increment());  // and every later call
  });
  EXPECT_LT(took, 1.0);
}

TEST(BaseManager, ServerDyingMidCallFailsTheCallWithinASecond) {
  BaseManager m = started_manager();
  auto c = m.create<Counter>("Counter", 0);
  pid_t server = m.pid();
  std::thread killer([server] {
    std::this_thread::sleep_for(200ms);
    ::kill(server, SIGKILL);
  });
  auto start = std::chrono::steady_clock::now();
  EXPECT_THROW(c.sleep_ms(10'000), EOFError);
  killer.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1500ms);
}

TEST(BaseManager, ClientKilledMidCallDoesNotHurtTheServer) {
  BaseManager m = started_manager();
  auto c = m.create<Counter>("Counter", 0);
  pid_t child = test::fork_child([&] {
    c.sleep_ms(5'000);
    return 0;
  });
  std::this_thread::sleep_for(300ms);
  ::kill(child, SIGKILL);
  EXPECT_EQ(test::wait_child(child).code, -SIGKILL);
  EXPECT_EQ(c.add(3), 3);
}

TEST(BaseManager, GarbageFromAClientDoesNotHurtTheServer) {
  BaseManager m = started_manager();
  auto c = m.create<Counter>("Counter", 0);
  Connection raw = Client(m.address(), m.authkey());
  for (std::string garbage :
       {std::string("M\x01"), std::string(""), std::string("Zxx"), std::string("C\xff\xff"),
        std::string(1, 'M') + std::string(8, '\0')}) {
    raw.send_bytes(garbage);
    std::string reply = raw.recv_bytes(5s);
    ASSERT_FALSE(reply.empty());
    EXPECT_EQ(reply[0], 'E');  // an exception back, not a crash
  }
  EXPECT_EQ(c.add(2), 2);
}

TEST(BaseManager, WrongAuthkeyIsRefusedAndTheServerStaysUp) {  // remote, TCP loopback
  BaseManager m =
      started_manager({.address = TcpAddress{"127.0.0.1", 0}, .authkey = std::string("right")});
  auto c = m.create<Counter>("Counter", 1);
  BaseManager wrong({.address = m.address(), .authkey = std::string("wrong")});
  EXPECT_THROW(wrong.connect(), AuthenticationError);
  EXPECT_EQ(c.value(), 1);
}

TEST(BaseManager, RemoteClientKnowingOnlyAddressAndKeyConnects) {  // parity 7.3 test_remote
  auto shared = std::make_shared<Counter>(100);
  BaseManager m({.address = TcpAddress{"127.0.0.1", 0}, .authkey = std::string("secret")});
  m.register_callable<Counter>("get_counter", [shared] { return shared; });
  m.start();
  std::string address = m.address().to_string();
  auto r = test::fork_and_wait([address] {
    BaseManager client({.address = Address(address), .authkey = std::string("secret")});
    client.connect();
    auto c1 = client.create<Counter>("get_counter");
    auto c2 = client.create<Counter>("get_counter");
    c1.increment();
    c2.increment();
    return c1.value() == 102 ? 0 : 1;  // one shared object
  });
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(m.create<Counter>("get_counter").value(), 102);
}

TEST(BaseManager, GetServerServesInTheCallingProcess) {
  BaseManager m({.address = TcpAddress{"127.0.0.1", 0}, .authkey = std::string("k")});
  m.register_type<Counter, int>("Counter");
  Server server = m.get_server();
  std::string address = server.address().to_string();
  Process serving([&server] { server.serve_forever(); });
  serving.start();
  BaseManager client({.address = Address(address), .authkey = std::string("k")});
  client.connect();
  EXPECT_EQ(client.create<Counter>("Counter", 4).add(1), 5);
  serving.terminate();
  serving.join();
}

std::size_t thread_count() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/task"))
    ++n;
  return n;
}

// This process's thread count once it is `expected`, or after 10 s whatever it is then: a thread
// whose work is done (a joined one, or std::async's once its future is ready) stays listed in
// /proc/self/task for a moment while it exits.
std::size_t thread_count_settled_at(std::size_t expected) {
  const auto give_up = std::chrono::steady_clock::now() + 10s;
  std::size_t n = thread_count();
  while (n != expected && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(1ms);
    n = thread_count();
  }
  return n;
}

// A Server of Counters serving from a thread of this process, and a client connected to it.
// `threads_before`: this process's threads before the server's.
struct ServingInThisProcess {
  explicit ServingInThisProcess(std::optional<Address> address)
      : server(server_for(std::move(address))),
        threads_before(thread_count()),
        serving(std::async(std::launch::async, [this] { server.serve_forever(); })),
        client({.address = server.address(), .authkey = std::string("k")}) {
    client.connect();
  }
  // Also when a test failed early: the future's destructor waits for serve_forever.
  ~ServingInThisProcess() { server.stop(); }
  ServingInThisProcess(const ServingInThisProcess&) = delete;
  ServingInThisProcess& operator=(const ServingInThisProcess&) = delete;
  static Server server_for(std::optional<Address> address) {
    BaseManager m({.address = std::move(address), .authkey = std::string("k")});
    m.register_type<Counter, int>("Counter");
    return m.get_server();
  }
  // Stops the server; false unless serve_forever returned in time.
  [[nodiscard]] bool stop() {
    server.stop();
    if (serving.wait_for(10s) != std::future_status::ready) return false;
    serving.get();
    return true;
  }

  Server server;
  std::size_t threads_before;
  std::future<void> serving;
  BaseManager client;
};

// A stopped in-process server leaves nothing behind: serve_forever returns having disconnected
// its clients and joined their threads, and a client still holding a proxy learns it at its next
// call instead of being served by a server that has stopped.
void expect_stop_disconnects_clients(std::optional<Address> address) {
  ServingInThisProcess s(std::move(address));
  auto counter = s.client.create<Counter>("Counter", 4);
  // One thread makes both calls: a manager connection belongs to the thread that opened it.
  std::promise<int> first_call;
  std::promise<void> server_stopped;
  auto caller = std::async(std::launch::async, [&] {
    first_call.set_value(counter.add(1));
    server_stopped.get_future().wait();
    return counter.add(1);
  });
  auto first = first_call.get_future();
  ASSERT_EQ(first.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(first.get(), 5);
  ASSERT_TRUE(s.stop());
  // The caller's: no server thread is left.
  EXPECT_EQ(thread_count_settled_at(s.threads_before + 1), s.threads_before + 1);
  server_stopped.set_value();
  ASSERT_EQ(caller.wait_for(10s), std::future_status::ready);
  try {
    (void)caller.get();
    ADD_FAILURE() << "a call was served after the server stopped";
  } catch (const EOFError&) {
    // The call went out on its connection, which the server had shut down.
  } catch (const std::system_error& e) {
    // The client saw its connection hung up first and dialled again (Python's
    // ConnectionRefusedError): nobody answers.
    EXPECT_EQ(e.code(), std::errc::connection_refused) << e.what();
  }
}

TEST(BaseManager, StoppedServerDisconnectsItsUnixClients) {
  expect_stop_disconnects_clients(std::nullopt);  // a fresh abstract Unix address
}

TEST(BaseManager, StoppedServerDisconnectsItsTcpClients) {
  expect_stop_disconnects_clients(TcpAddress{"127.0.0.1", 0});
}

// A call still running when the server stops does not hold the stop up (its client is told at
// once), and its thread ends by itself once the call returns.
TEST(BaseManager, StoppingServerDoesNotWaitForACallInProgress) {
  ServingInThisProcess s(TcpAddress{"127.0.0.1", 0});
  auto counter = s.client.create<Counter>("Counter", 0);
  std::promise<void> calling;
  auto caller = std::async(std::launch::async, [&] {
    EXPECT_EQ(counter.add(1), 1);  // connected, so that the sleep below is a call in progress
    calling.set_value();
    counter.sleep_ms(1500);
  });
  ASSERT_EQ(calling.get_future().wait_for(10s), std::future_status::ready);
  std::this_thread::sleep_for(100ms);  // the server is now inside sleep_ms
  const auto stopping = std::chrono::steady_clock::now();
  ASSERT_TRUE(s.stop());
  EXPECT_LT(std::chrono::steady_clock::now() - stopping, 1s);
  ASSERT_EQ(caller.wait_for(10s), std::future_status::ready);
  EXPECT_THROW(caller.get(), EOFError);
  // The server's thread for that call leaves once sleep_ms has returned.
  EXPECT_EQ(thread_count_settled_at(s.threads_before), s.threads_before);
}

TEST(BaseManager, RestartOnTheSameAddressRightAway) {  // parity 7.3 test_rapid_restart
  BaseManager first =
      started_manager({.address = TcpAddress{"127.0.0.1", 0}, .authkey = std::string("k")});
  Address address = first.address();
  EXPECT_EQ(first.create<Counter>("Counter", 1).value(), 1);
  first.shutdown();
  BaseManager second;
  for (int attempt = 0;; ++attempt) {
    try {
      second = started_manager({.address = address, .authkey = std::string("k")});
      break;
    } catch (const std::exception&) {
      if (attempt == 1) throw;  // Python tolerates one retry after 1 s on EADDRINUSE
      std::this_thread::sleep_for(1s);
    }
  }
  EXPECT_EQ(second.address(), address);
  EXPECT_EQ(second.create<Counter>("Counter", 2).value(), 2);
}

TEST(BaseManager, ServerExitsWhenItsParentDies) {
  auto [reader, writer] = Pipe(false);
  pid_t child = test::fork_child([&, &writer = writer] {
    BaseManager m = started_manager();
    writer.send(static_cast<int>(m.pid()));
    ::kill(::getpid(), SIGKILL);  // no destructor, no exit handler
    return 0;
  });
  int server = reader.recv<int>(10s);
  EXPECT_EQ(test::wait_child(child).code, -SIGKILL);
  // The orphan is re-parented (to init or a subreaper); it must end by itself.
  EXPECT_TRUE(wait_until_gone(server, 5s));
}

}  // namespace
}  // namespace mproc::test_manager
