// A local pool without a collector thread (detail::make_driven_engine): its owner's thread takes
// the workers' results, as mproc::dist's node agent does between its MPI polls. The Pool API runs
// on top of it through a Cluster that makes such an engine, with a test thread as the owner.
#include <signal.h>

#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "mproc/pool.h"

#include "pool_tasks.h"

namespace driventest {

int die(int /*x*/) {
  ::raise(SIGKILL);
  return 0;
}
MPROC_TASK(driventest::die);

int loop_for_ever(int x) {
  volatile bool forever = true;
  while (forever) {
  }
  return x;
}
MPROC_TASK(driventest::loop_for_ever);

}  // namespace driventest

namespace mproc {
namespace {

using namespace std::chrono_literals;
using pooltasks::sleepy_square;
using pooltasks::square;

using Collect = std::function<std::size_t(const Deadline&)>;

class DrivenCluster : public detail::Cluster {
 public:
  std::shared_ptr<detail::Engine> make_engine(const PoolOptions& options) override {
    PoolOptions local = options;
    local.cluster = nullptr;
    detail::DrivenEngine driven = detail::make_driven_engine(std::move(local));
    collect = std::move(driven.collect);
    return std::move(driven.engine);
  }
  Collect collect;
};

// The owner's thread, collecting until it is destroyed (before the pool: declared after it).
class Driver {
 public:
  explicit Driver(Collect collect)
      : thread_([collect = std::move(collect)](const std::stop_token& stop) {
          while (!stop.stop_requested()) (void)collect(Deadline::after(1ms));
        }) {}

 private:
  std::jthread thread_;
};

struct DrivenPool {
  std::shared_ptr<DrivenCluster> cluster = std::make_shared<DrivenCluster>();
  Pool pool;
  explicit DrivenPool(int processes)
      : pool(PoolOptions{.processes = processes, .cluster = cluster}) {}
};

TEST(DrivenPool, ResultsComeInOnlyWhenTheOwnerCollects) {
  DrivenPool driven(1);
  auto result = driven.pool.apply_async(square, 7);
  // The worker answers within milliseconds; nobody takes the answer but the owner.
  EXPECT_FALSE(result.wait(300ms));
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (!result.ready() && std::chrono::steady_clock::now() < deadline)
    (void)driven.cluster->collect(Deadline::after(10ms));
  ASSERT_TRUE(result.ready());
  EXPECT_EQ(result.get(0s), 49);
}

TEST(DrivenPool, MapApplyAndImapReturnEveryResult) {
  DrivenPool driven(2);
  Driver driver(driven.cluster->collect);
  std::vector<int> inputs(1000);
  for (int i = 0; i < 1000; ++i) inputs[static_cast<std::size_t>(i)] = i;
  auto squares = driven.pool.map_async(square, inputs).get(20s);
  ASSERT_EQ(squares.size(), 1000u);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(squares[static_cast<std::size_t>(i)], i * i);
  EXPECT_EQ(driven.pool.apply_async(sleepy_square, 5, 20).get(20s), 25);
  auto it = driven.pool.imap(square, inputs, {.chunksize = 7});
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(it.next(20s), std::optional<int>(i * i));
}

TEST(DrivenPool, AKilledWorkerFailsItsTaskAndIsReplaced) {
  DrivenPool driven(1);
  Driver driver(driven.cluster->collect);
  EXPECT_THROW((void)driven.pool.apply_async(driventest::die, 1).get(20s), WorkerLostError);
  EXPECT_EQ(driven.pool.apply_async(square, 3).get(20s), 9);
}

TEST(DrivenPool, ATaskPastItsTimeoutIsStopped) {
  DrivenPool driven(1);
  Driver driver(driven.cluster->collect);
  auto runaway =
      driven.pool.apply_async(driventest::loop_for_ever, 1, TaskOptions{.timeout = 200ms});
  EXPECT_THROW((void)runaway.get(20s), TimeoutError);
  EXPECT_EQ(driven.pool.apply_async(square, 4).get(20s), 16);
}

// With nobody else collecting, join() after close() takes the workers' results and notices
// itself until the last worker has left.
TEST(DrivenPool, JoinAfterCloseCollectsUntilTheWorkersLeft) {
  DrivenPool driven(2);
  std::vector<AsyncResult<int>> results;
  for (int i = 0; i < 6; ++i) results.push_back(driven.pool.apply_async(sleepy_square, i, 20));
  driven.pool.close();
  auto joined = std::async(std::launch::async, [&] { driven.pool.join(); });
  ASSERT_EQ(joined.wait_for(20s), std::future_status::ready);
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(results[static_cast<std::size_t>(i)].ready()) << i;
    EXPECT_EQ(results[static_cast<std::size_t>(i)].get(0s), i * i);
  }
}

}  // namespace
}  // namespace mproc
