// The Pool on a cluster (mproc::dist), run by ctest as `mpirun --oversubscribe -np 3
// dist_test`: rank 0 runs these tests, ranks 1 and 2 are node agents (mproc::init in
// test_main.cc never returns there). Run without mpirun, the same tests use the local pool.
#include "mproc/dist.h"

#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <future>
#include <mutex>
#include <optional>
#include <ranges>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "mproc/mproc.h"

namespace disttasks {

inline int square(int x) { return x * x; }
inline int rank_of(int /*x*/) { return mproc::mpi_rank(); }
inline int add(int a, int b) { return a + b; }
inline std::string shout(std::string text) { return text + "!"; }

inline int throw_at_three(int x) {
  if (x == 3) throw std::out_of_range("x is three");
  return x;
}

struct QuotaExceeded : std::runtime_error {
  using std::runtime_error::runtime_error;
};
inline int over_quota(int x) { throw QuotaExceeded("quota of " + std::to_string(x)); }

// Kills its own worker on the input `victim`.
inline int die_at(int x, int victim) {
  if (x == victim) ::raise(SIGKILL);
  return x * x;
}

inline int sleep_ms(int millis) {
  std::this_thread::sleep_for(std::chrono::milliseconds(millis));
  return millis;
}

inline int unknown_on_agents(int x) { return x + 1; }

}  // namespace disttasks

MPROC_TASK(disttasks::square);
MPROC_TASK(disttasks::rank_of);
MPROC_TASK(disttasks::add);
MPROC_TASK(disttasks::shout);
MPROC_TASK(disttasks::throw_at_three);
MPROC_TASK(disttasks::over_quota);
MPROC_TASK(disttasks::die_at);
MPROC_TASK(disttasks::sleep_ms);
MPROC_EXCEPTION(disttasks::QuotaExceeded);

namespace mproc {
namespace {

using namespace std::chrono_literals;

constexpr auto kLimit = 60s;  // no test waits longer for one result

PoolOptions cluster_options() { return PoolOptions{.cluster = mpi_cluster()}; }
bool on_cluster() { return mpi_cluster() != nullptr; }

std::vector<int> iota_vector(int n) {
  std::vector<int> v(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = i;
  return v;
}

TEST(DistPool, TasksRunOnAgentRanksNotOnRankZero) {
  Pool pool(cluster_options());
  std::vector<int> ranks =
      pool.map_async(disttasks::rank_of, iota_vector(200), {.chunksize = 1}).get(kLimit);
  std::set<int> seen(ranks.begin(), ranks.end());
  if (on_cluster()) {
    EXPECT_EQ(seen.count(0), 0u);
    EXPECT_GE(pool.processes(), 2);
    EXPECT_TRUE(pool.worker_pids().empty());
  } else {
    EXPECT_EQ(seen, std::set<int>{0});
  }
}

TEST(DistPool, WorkIsSpreadOverEveryAgentByDemand) {
  if (!on_cluster()) GTEST_SKIP() << "not under mpirun";
  Pool pool(cluster_options());
  std::vector<AsyncResult<int>> results;
  for (int i = 0; i < 40; ++i) results.push_back(pool.apply_async(disttasks::rank_of, i));
  std::set<int> seen;
  for (auto& r : results) seen.insert(r.get(kLimit));
  EXPECT_EQ(seen, (std::set<int>{1, 2}));
}

TEST(DistPool, MapReturnsEveryResultInOrderExactlyOnce) {
  Pool pool(cluster_options());
  for (std::size_t chunksize : {1, 7, 1000}) {
    std::vector<int> got =
        pool.starmap_async(disttasks::add, std::vector<std::pair<int, int>>{}).get(kLimit);
    EXPECT_TRUE(got.empty());
    std::vector<std::string> words;
    for (int i = 0; i < 500; ++i) words.push_back("w" + std::to_string(i));
    std::vector<std::string> shouted =
        pool.map_async(disttasks::shout, words, {.chunksize = chunksize}).get(kLimit);
    ASSERT_EQ(shouted.size(), words.size());
    for (std::size_t i = 0; i < words.size(); ++i) EXPECT_EQ(shouted[i], words[i] + "!");
  }
}

TEST(DistPool, MapOfRawValuesTravelsInBatches) {
  Pool pool(cluster_options());
  std::vector<int> squares = pool.map_async(disttasks::square, iota_vector(40000)).get(kLimit);
  ASSERT_EQ(squares.size(), 40000u);
  for (int i = 0; i < 40000; i += 997) EXPECT_EQ(squares[static_cast<std::size_t>(i)], i * i);
  EXPECT_EQ(squares[39999], 39999 * 39999);
}

TEST(DistPool, ApplyStarmapImapAndCallbacksWork) {
  Pool pool(cluster_options());
  EXPECT_EQ(pool.apply_async(disttasks::add, 2, 3).get(kLimit), 5);
  std::vector<std::pair<int, int>> pairs{{1, 2}, {3, 4}, {5, 6}};
  EXPECT_EQ(pool.starmap_async(disttasks::add, pairs).get(kLimit), (std::vector<int>{3, 7, 11}));

  std::vector<int> ordered;
  auto it = pool.imap(disttasks::square, iota_vector(50), {.chunksize = 3});
  while (auto v = it.next(kLimit)) ordered.push_back(*v);
  std::vector<int> expected;
  for (int i = 0; i < 50; ++i) expected.push_back(i * i);
  EXPECT_EQ(ordered, expected);

  std::atomic<int> called{0};
  std::atomic<int> value{0};
  auto r = pool.apply_async(disttasks::square, std::tuple{9}, {.callback = [&](const int& v) {
                              value = v;
                              ++called;
                            }});
  EXPECT_EQ(r.get(kLimit), 81);
  std::atomic<bool> error_seen{false};
  auto failing =
      pool.apply_async(disttasks::throw_at_three, std::tuple{3},
                       {.error_callback = [&](std::exception_ptr) { error_seen = true; }});
  EXPECT_THROW(failing.get(kLimit), std::out_of_range);
  std::atomic<std::size_t> map_size{0};
  auto mapped =
      pool.map_async(disttasks::square, iota_vector(10),
                     {.callback = [&](const std::vector<int>& all) { map_size = all.size(); }});
  mapped.get(kLimit);
  // Callbacks run before get() returns? Only before the result is ready; give them a moment.
  for (int i = 0; i < 100 && (called == 0 || !error_seen || map_size == 0); ++i)
    std::this_thread::sleep_for(10ms);
  EXPECT_EQ(called, 1);
  EXPECT_EQ(value, 81);
  EXPECT_TRUE(error_seen);
  EXPECT_EQ(map_size, 10u);
}

// A thread waiting for a result polls MPI itself meanwhile (the hub's thread sleeps), but the
// callbacks given at submission still run as the local pool runs them: on one thread of the
// pool's own, never inside a user's wait.
TEST(DistPool, CallbacksRunOnOneThreadOfThePoolsWhileAWaiterPolls) {
  Pool pool(cluster_options());
  std::mutex m;
  std::set<std::thread::id> threads;
  std::atomic<int> called{0};
  std::vector<AsyncResult<int>> with_callbacks;
  std::vector<AsyncResult<int>> plain;
  for (int i = 0; i < 20; ++i) {
    with_callbacks.push_back(
        pool.apply_async(disttasks::square, std::tuple{i}, {.callback = [&](const int&) {
                           std::scoped_lock lock(m);
                           threads.insert(std::this_thread::get_id());
                           ++called;
                         }}));
    plain.push_back(pool.apply_async(disttasks::square, i));
  }
  for (int i = 0; i < 20; ++i) EXPECT_EQ(plain[static_cast<std::size_t>(i)].get(kLimit), i * i);
  for (int i = 0; i < 20; ++i)
    EXPECT_EQ(with_callbacks[static_cast<std::size_t>(i)].get(kLimit), i * i);
  for (int i = 0; i < 500 && called < 20; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(called, 20);
  std::scoped_lock lock(m);
  EXPECT_EQ(threads.size(), 1u);
  EXPECT_EQ(threads.count(std::this_thread::get_id()), 0u);
}

TEST(DistPool, TaskExceptionsKeepTheirTypes) {
  Pool pool(cluster_options());
  EXPECT_THROW(pool.apply_async(disttasks::throw_at_three, 3).get(kLimit), std::out_of_range);
  EXPECT_THROW(pool.apply_async(disttasks::over_quota, 5).get(kLimit), disttasks::QuotaExceeded);
  try {
    pool.map_async(disttasks::throw_at_three, iota_vector(10), {.chunksize = 2}).get(kLimit);
    ADD_FAILURE() << "map did not throw";
  } catch (const std::out_of_range& e) {
    EXPECT_STREQ(e.what(), "x is three");
  }
  EXPECT_EQ(pool.apply_async(disttasks::square, 4).get(kLimit), 16);  // the pool goes on
}

TEST(DistPool, KilledWorkerOnAnAgentFailsOnlyItsTask) {
  Pool pool(cluster_options());
  std::vector<AsyncResult<int>> results;
  for (int i = 0; i < 20; ++i) results.push_back(pool.apply_async(disttasks::die_at, i, 7));
  for (int i = 0; i < 20; ++i) {
    if (i == 7) {
      try {
        results[7].get(kLimit);
        ADD_FAILURE() << "the killed task returned";
      } catch (const WorkerLostError& e) {
        std::string text = e.what();
        EXPECT_NE(text.find("SIGKILL"), std::string::npos) << text;
        if (on_cluster()) {
          EXPECT_NE(text.find("on rank "), std::string::npos) << text;
          EXPECT_NE(text.find("(host "), std::string::npos) << text;
        }
      }
    } else {
      EXPECT_EQ(results[static_cast<std::size_t>(i)].get(kLimit), i * i);
    }
  }
  // The worker was replaced: a whole map still completes.
  EXPECT_EQ(pool.starmap_async(disttasks::die_at, std::vector<std::pair<int, int>>{}).get(kLimit),
            std::vector<int>{});
  EXPECT_EQ(
      pool.starmap_async(disttasks::die_at, std::vector<std::pair<int, int>>{{3, -1}}).get(kLimit),
      std::vector<int>{9});
}

TEST(DistPool, UnregisteredTaskOnAnAgentIsAnError) {
  if (!on_cluster()) GTEST_SKIP() << "not under mpirun: every task is registered here";
  // Registered now, on rank 0 only: the agents' programs have never heard of it.
  ASSERT_TRUE(
      detail::register_task_or_abort<disttasks::unknown_on_agents>("disttasks::unknown_on_agents"));
  Pool pool(cluster_options());
  try {
    pool.apply_async(disttasks::unknown_on_agents, 1).get(kLimit);
    ADD_FAILURE() << "an unknown task ran";
  } catch (const NotRegisteredError& e) {
    EXPECT_NE(std::string(e.what()).find("unknown_on_agents"), std::string::npos) << e.what();
  }
  EXPECT_EQ(pool.apply_async(disttasks::square, 5).get(kLimit), 25);
}

TEST(DistPool, ImapUnorderedOverAnEndlessRangeStaysBounded) {
  Pool pool(cluster_options());
  std::atomic<long> read{0};
  auto counted = std::views::iota(0) | std::views::transform([&read](int x) {
                   ++read;
                   return x;
                 });
  constexpr std::size_t kBuffer = 8;
  auto it =
      pool.imap_unordered(disttasks::square, counted, {.chunksize = 2, .buffersize = kBuffer});
  long sum = 0;
  std::set<int> seen;
  for (int i = 0; i < 2000; ++i) {
    auto v = it.next(kLimit);
    ASSERT_TRUE(v);
    seen.insert(*v);
    sum += 1;
    // Never more read than consumed plus the buffer's chunks.
    ASSERT_LE(read.load(), static_cast<long>(i + 1 + (kBuffer + 1) * 2)) << "at " << i;
  }
  EXPECT_EQ(sum, 2000);
  EXPECT_EQ(seen.size(), 2000u);
  pool.terminate();
}

// imap reads its input as it submits: a chunk read after terminate() fails at its place (the
// hub has dropped the job by then), and the iterator ends instead of waiting for it.
TEST(DistPool, AChunkFedToAnImapAfterTerminateFailsAtOnce) {
  Pool pool(cluster_options());
  auto inputs = std::views::iota(0, 4) | std::views::transform([&pool](int i) {
                  if (i == 2) pool.terminate();
                  return i;
                });
  auto it = pool.imap(disttasks::square, inputs);
  for (int i = 0; i < 2; ++i) {
    try {
      EXPECT_EQ(it.next(kLimit), std::optional<int>(i * i));
    } catch (const ProcessError& e) {
      EXPECT_NE(std::string(e.what()).find("terminated"), std::string::npos) << e.what();
    }
  }
  try {
    (void)it.next(kLimit);
    ADD_FAILURE() << "the chunk read after terminate() did not fail";
  } catch (const ProcessError& e) {
    EXPECT_NE(std::string(e.what()).find("terminated"), std::string::npos) << e.what();
  }
  try {
    (void)it.next(kLimit);  // the end, or (locally) the last chunk's failure
  } catch (const ProcessError& e) {
    EXPECT_NE(std::string(e.what()).find("terminated"), std::string::npos) << e.what();
  }
}

TEST(DistPool, TerminateWithStuckTasksReturnsAndFreesTheWorkers) {
  Pool pool(cluster_options());
  std::vector<AsyncResult<int>> stuck;
  for (int i = 0; i < pool.processes() + 4; ++i)
    stuck.push_back(pool.apply_async(disttasks::sleep_ms, 600000));
  std::this_thread::sleep_for(300ms);  // let them start
  auto start = std::chrono::steady_clock::now();
  pool.terminate();
  pool.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
  for (auto& r : stuck) EXPECT_THROW(r.get(kLimit), ProcessError);
  EXPECT_THROW((void)pool.apply_async(disttasks::square, 1), ValueError);
  // The agents stopped the stuck workers: a new pool gets every worker at once.
  Pool next(cluster_options());
  std::vector<AsyncResult<int>> quick;
  for (int i = 0; i < next.processes(); ++i)
    quick.push_back(next.apply_async(disttasks::sleep_ms, 10));
  for (auto& r : quick) EXPECT_EQ(r.get(20s), 10);
}

TEST(DistPool, CloseAndJoinWaitForQueuedWork) {
  Pool pool(cluster_options());
  std::vector<AsyncResult<int>> results;
  for (int i = 0; i < 30; ++i) results.push_back(pool.apply_async(disttasks::sleep_ms, 20));
  pool.close();
  EXPECT_THROW((void)pool.apply_async(disttasks::square, 1), ValueError);
  pool.join();
  for (auto& r : results) {
    ASSERT_TRUE(r.ready());
    EXPECT_EQ(r.get(kLimit), 20);
  }
}

TEST(DistPool, JoinAfterCloseDoesNotWaitForAnUnfinishedImap) {
  Pool pool(cluster_options());
  auto it = pool.imap_unordered(disttasks::square, std::views::iota(0), {.buffersize = 2});
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(it.next(kLimit));
  pool.close();
  auto joined = std::async(std::launch::async, [&] { pool.join(); });
  EXPECT_EQ(joined.wait_for(kLimit), std::future_status::ready);
}

TEST(DistPool, TaskTimeoutStopsTheTaskOnItsAgent) {
  Pool pool(cluster_options());
  auto slow = pool.apply_async(disttasks::sleep_ms, 60000, TaskOptions{.timeout = 300ms});
  EXPECT_THROW(slow.get(kLimit), TimeoutError);
  EXPECT_EQ(pool.apply_async(disttasks::sleep_ms, 5).get(kLimit), 5);
}

TEST(DistPool, CancelWithInterruptStopsARunningTask) {
  Pool pool(cluster_options());
  auto running = pool.apply_async(disttasks::sleep_ms, 60000);
  std::this_thread::sleep_for(300ms);
  EXPECT_FALSE(running.cancel());
  EXPECT_TRUE(running.cancel({.interrupt = true}));
  EXPECT_THROW(running.get(kLimit), CancelledError);
  EXPECT_EQ(pool.apply_async(disttasks::square, 6).get(kLimit), 36);
}

TEST(DistPool, ClusterPoolRefusesLocalOptions) {
  if (!on_cluster()) GTEST_SKIP() << "not under mpirun";
  EXPECT_THROW(Pool(PoolOptions{.processes = 2, .cluster = mpi_cluster()}), ValueError);
}

}  // namespace
}  // namespace mproc
