// PoolProxy / managed::Pool: a process pool living in a manager's server (issue 6; parity 7.4
// test_pool).
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "mproc/mproc.h"
#include "mproc/sync_manager.h"

#include "support.h"

namespace pool_test {

int square(int x) { return x * x; }
int add(int a, int b) { return a + b; }
int slow_square(int x) {
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  return x * x;
}
int sleep_seconds(int s) {
  std::this_thread::sleep_for(std::chrono::seconds(s));
  return s;
}
int worker_pid(int) { return static_cast<int>(::getpid()); }
void nothing() {}

struct QuotaExceeded : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct Oddball : std::runtime_error {  // not registered: comes back as RemoteError
  using std::runtime_error::runtime_error;
};

int fails_standard(int x) {
  if (x < 0) throw std::invalid_argument("negative: " + std::to_string(x));
  return x;
}
int fails_registered(int) { throw QuotaExceeded("over quota"); }
int fails_unregistered(int) { throw Oddball("odd"); }

struct Scale {  // a callable type with state and an argument
  int factor = 1;
  int operator()(int x) const { return factor * x; }
  template <class Ar>
  void serialize(Ar& ar, unsigned) {
    ar& factor;
  }
};

struct NotATask {
  int operator()(int x) const { return x; }
  template <class Ar>
  void serialize(Ar&, unsigned) {}
};

}  // namespace pool_test

MPROC_TASK(pool_test::square);
MPROC_TASK(pool_test::add);
MPROC_TASK(pool_test::slow_square);
MPROC_TASK(pool_test::sleep_seconds);
MPROC_TASK(pool_test::worker_pid);
MPROC_TASK(pool_test::nothing);
MPROC_TASK(pool_test::fails_standard);
MPROC_TASK(pool_test::fails_registered);
MPROC_TASK(pool_test::fails_unregistered);
MPROC_TASK(pool_test::Scale);
MPROC_EXCEPTION(pool_test::QuotaExceeded);

namespace mproc {
namespace {

using namespace pool_test;
using namespace std::chrono_literals;

// 7.4 test_pool: a child uses the server's pool; the parent closes and joins it.
TEST(ManagerPool, ChildAppliesMapsAndSeesTaskErrors) {
  Manager m;
  PoolProxy pool = m.Pool(4);
  EXPECT_EQ(pool.processes(), 4);
  auto r = test::fork_and_wait([&] {
    if (pool.apply(square, 7) != 49) return 1;
    if (pool.map(square, std::vector{1, 2, 3}) != std::vector{1, 4, 9}) return 2;
    if (pool.starmap(add, std::vector<std::pair<int, int>>{{1, 2}, {3, 4}}) != std::vector{3, 7})
      return 3;
    try {
      (void)pool.apply(fails_standard, -1);
      return 4;
    } catch (const std::invalid_argument& e) {
      if (std::string(e.what()) != "negative: -1") return 5;
    }
    return 0;
  });
  EXPECT_EQ(r.code, 0);
  pool.close();
  EXPECT_THROW((void)pool.apply(square, 1), ValueError);
  pool.join();
}

// 7.4 test_pool's `with obj: pass` in the child: leaving the scope terminates the pool.
TEST(ManagerPool, ScopeInAChildTerminatesThePool) {
  Manager m;
  PoolProxy pool = m.Pool(2);
  auto r = test::fork_and_wait([&] {
    {
      auto scope = pool.scope();
      if (scope->apply(square, 2) != 4) return 1;
    }
    try {
      (void)pool.apply(square, 3);
      return 2;
    } catch (const ValueError&) {  // "Pool not running"
      return 0;
    }
  });
  EXPECT_EQ(r.code, 0);
  EXPECT_THROW((void)pool.apply(square, 1), ValueError);
  pool.join();
}

TEST(ManagerPool, CallableTypeAndVoidTask) {
  Manager m;
  PoolProxy pool = m.Pool(2);
  EXPECT_EQ(pool.apply(Scale{3}, 5), 15);
  EXPECT_EQ(pool.map(Scale{-1}, std::vector{1, 2}), (std::vector{-1, -2}));
  pool.apply(nothing);
  pool.terminate();
  pool.join();
}

TEST(ManagerPool, TaskExceptionsComeBackAsThemselves) {
  Manager m;
  PoolProxy pool = m.Pool(2);
  EXPECT_THROW((void)pool.apply(fails_standard, -3), std::invalid_argument);
  EXPECT_THROW((void)pool.apply(fails_registered, 0), QuotaExceeded);
  try {
    (void)pool.apply(fails_unregistered, 0);
    ADD_FAILURE() << "no exception";
  } catch (const RemoteError& e) {
    EXPECT_NE(std::string(e.what()).find("Oddball"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("odd"), std::string::npos) << e.what();
  }
  // map: the first error by position, after every call has run.
  EXPECT_THROW((void)pool.map(fails_standard, std::vector{1, -1, 2, -2}), std::invalid_argument);
  EXPECT_EQ(pool.map(fails_standard, std::vector{1, 2}, 1), (std::vector{1, 2}));
}

TEST(ManagerPool, UnregisteredCallableIsRefusedBeforeSending) {
  Manager m;
  PoolProxy pool = m.Pool(1);
  EXPECT_THROW((void)pool.apply(NotATask{}, 1), NotRegisteredError);
  EXPECT_THROW((void)pool.map(NotATask{}, std::vector{1}), NotRegisteredError);
}

TEST(ManagerPool, ApplyAsyncGivesAResultProxy) {
  Manager m;
  PoolProxy pool = m.Pool(2);
  AsyncResultProxy<int> r = pool.apply_async(slow_square, 6);
  EXPECT_FALSE(r.ready());
  EXPECT_THROW((void)r.successful(), ValueError);  // not ready yet
  EXPECT_FALSE(r.wait(10ms));
  EXPECT_EQ(r.get(10s), 36);
  EXPECT_TRUE(r.ready());
  EXPECT_TRUE(r.successful());
  EXPECT_EQ(r.get(), 36);  // again

  auto slow = pool.apply_async(sleep_seconds, 2);
  EXPECT_THROW((void)slow.get(50ms), TimeoutError);
  EXPECT_EQ(slow.get(20s), 2);

  auto bad = pool.apply_async(fails_registered, 1);
  ASSERT_TRUE(bad.wait(20s));
  EXPECT_FALSE(bad.successful());
  EXPECT_THROW((void)bad.get(), QuotaExceeded);  // ready: get() without a timeout returns at once
}

TEST(ManagerPool, ResultProxyWorksInAnotherProcessAndKeepsItsPool) {
  Manager m;
  PoolProxy pool = m.Pool(2);
  auto r = pool.apply_async(slow_square, 9);
  pool = PoolProxy();  // the result still holds the server's pool
  auto child = test::fork_and_wait([&] { return r.get(10s) == 81 ? 0 : 1; });
  EXPECT_EQ(child.code, 0);
  EXPECT_EQ(r.get(10s), 81);
}

TEST(ManagerPool, MapAsyncAndStarmapAsync) {
  Manager m;
  PoolProxy pool = m.Pool(3);
  MapResultProxy<int> squares = pool.map_async(square, std::vector{1, 2, 3, 4}, 2);
  MapResultProxy<int> sums =
      pool.starmap_async(add, std::vector<std::tuple<int, int>>{{1, 1}, {2, 2}});
  EXPECT_EQ(squares.get(10s), (std::vector{1, 4, 9, 16}));
  EXPECT_EQ(sums.get(10s), (std::vector{2, 4}));
  EXPECT_TRUE(sums.successful());
  auto failing = pool.map_async(fails_standard, std::vector{3, -7});
  EXPECT_THROW((void)failing.get(10s), std::invalid_argument);
  EXPECT_FALSE(failing.successful());
}

TEST(ManagerPool, LifecycleErrorsAsPython) {
  Manager m;
  PoolProxy pool = m.Pool(1);
  EXPECT_THROW(pool.join(), ValueError);  // still running
  pool.terminate();
  EXPECT_THROW((void)pool.apply(square, 2), ValueError);
  EXPECT_THROW((void)pool.apply_async(square, 2), ValueError);
  pool.join();
  EXPECT_THROW((void)m.Pool(0), ValueError);
}

// One pool, driven at once from several processes and threads (several server connection
// threads): every call gets its own answer.
TEST(ManagerPool, SeveralClientsDriveOnePoolAtOnce) {
  Manager m;
  PoolProxy pool = m.Pool(3);
  std::vector<pid_t> children;
  for (int c = 0; c < 3; ++c) {
    children.push_back(test::fork_child([&, c] {
      for (int i = 0; i < 40; ++i) {
        int x = c * 1000 + i;
        if (pool.apply(square, x) != x * x) return 1;
        if (i % 10 == 0 && pool.map(square, std::vector{x, 1}, 1) != std::vector{x * x, 1})
          return 2;
      }
      return 0;
    }));
  }
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 40; ++i) {
        int x = 5000 + t * 100 + i;
        if (pool.apply_async(square, x).get(20s) != x * x) ++wrong;
      }
    });
  }
  for (auto& t : threads) t.join();
  for (pid_t c : children) EXPECT_EQ(test::wait_child(c, 60s).code, 0);
  EXPECT_EQ(wrong.load(), 0);
}

// A client on TCP that knows only the address and the key makes a pool in the server by name
// and uses it, results and all.
TEST(ManagerPool, RemoteClientMakesAndUsesAPool) {
  SyncManager m({.address = TcpAddress{"127.0.0.1", 0}, .authkey = std::string("pool-key")});
  m.start();
  const std::string address = m.address().to_string();
  auto r = test::fork_and_wait([address] {
    BaseManager client({.address = Address(address), .authkey = std::string("pool-key")});
    client.connect();
    auto pool = client.create<PoolProxy>("Pool", std::optional<std::int64_t>(2),
                                         std::optional<std::int64_t>());
    if (pool.apply(square, 3) != 9) return 1;
    if (pool.apply_async(square, 4).get(10s) != 16) return 2;
    if (pool.map_async(square, std::vector{5, 6}).get(10s) != std::vector{25, 36}) return 3;
    pool.close();
    pool.join();
    return 0;
  });
  EXPECT_EQ(r.code, 0);
}

// Shutting the manager down with a busy pool and a client blocked in it: the server exits at
// once (not killed), the pool's workers are gone (reaped), and nothing is left in /dev/shm (the
// test main checks).
TEST(ManagerPool, ShutdownWithLivePoolNeitherHangsNorLeaks) {
  Manager m;
  PoolProxy pool = m.Pool(2);
  std::vector<int> workers = pool.map(worker_pid, std::vector{0, 1, 2, 3}, 1);
  auto pending = pool.apply_async(sleep_seconds, 60);
  pid_t blocked = test::fork_child([&] {
    try {
      (void)pool.apply(sleep_seconds, 60);
      return 1;
    } catch (const std::exception&) {  // ProcessError (terminated) or EOFError (server gone)
      return 0;
    }
  });
  std::this_thread::sleep_for(200ms);  // the child's call is in the server
  double seconds = test::seconds_to_run([&] { m.shutdown(); });
  EXPECT_LT(seconds, 5.0);
  EXPECT_EQ(m.exitcode(), 0);
  EXPECT_EQ(test::wait_child(blocked, 20s).code, 0);
  for (int pid : workers) {
    EXPECT_NE(::kill(pid, 0), 0) << "worker " << pid << " outlived the manager";
    EXPECT_EQ(errno, ESRCH);
  }
  EXPECT_ANY_THROW((void)pending.get(1s));  // the server is gone
}

}  // namespace
}  // namespace mproc
