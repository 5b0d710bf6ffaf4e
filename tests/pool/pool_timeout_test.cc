// Pool per-task timeouts (issue 9): a task that runs past its own limit is stopped by killing its
// worker, fails with TimeoutError, the worker is replaced and the pool goes on; and
// max_memory_per_child.
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <future>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "mproc/pool.h"

#include "pool_tasks.h"
#include "support.h"

namespace timeouttest {

using namespace std::chrono_literals;

using pooltasks::sleepy_square;
using pooltasks::square;

// Loops for ever when x is one of the runaways (x % 5 == 3), else returns x * x.
int square_or_loop(int x) {
  volatile bool forever = x % 5 == 3;
  while (forever) {
  }
  return x * x;
}
MPROC_TASK(timeouttest::square_or_loop);

int loop_with(int a, int b) {
  volatile bool forever = a == b;
  while (forever) {
  }
  return a + b;
}
MPROC_TASK(timeouttest::loop_with);

int my_pid() { return static_cast<int>(::getpid()); }
MPROC_TASK(timeouttest::my_pid);

// A pipe made before the pool (its workers inherit it): tasks write to it, the test reads.
int report_fd = -1;

void report(char c) { (void)!::write(report_fd, &c, 1); }
void report_pid() {
  int pid = static_cast<int>(::getpid());
  (void)!::write(report_fd, &pid, sizeof pid);
}

void on_sigterm(int) {
  report('T');
  ::_exit(0);
}

// Writes its pid, then loops; on SIGTERM writes 'T' and leaves.
int loop_catching_sigterm(int) {
  ::signal(SIGTERM, on_sigterm);
  report_pid();
  volatile bool forever = true;
  while (forever) {
  }
  return 0;
}
MPROC_TASK(timeouttest::loop_catching_sigterm);

// Writes its pid, then loops, ignoring SIGTERM.
int loop_ignoring_sigterm(int) {
  ::signal(SIGTERM, SIG_IGN);
  report_pid();
  volatile bool forever = true;
  while (forever) {
  }
  return 0;
}
MPROC_TASK(timeouttest::loop_ignoring_sigterm);

// Keeps `mib` MiB (touched) for ever, and returns its pid.
char* volatile leaked = nullptr;
int leak_mib(int mib) {
  auto* block = static_cast<char*>(std::malloc(static_cast<std::size_t>(mib) << 20));
  if (block != nullptr) std::memset(block, 1, static_cast<std::size_t>(mib) << 20);
  leaked = block;
  return static_cast<int>(::getpid());
}
MPROC_TASK(timeouttest::leak_mib);

// This worker's resident memory in MiB.
long resident_mib() {
  long size = 0, resident = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &size, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return resident * ::sysconf(_SC_PAGESIZE) / (1 << 20);
}
MPROC_TASK(timeouttest::resident_mib);

}  // namespace timeouttest

namespace mproc {
namespace {

using namespace std::chrono_literals;
using timeouttest::report_fd;

class Pipe {
 public:
  Pipe() {
    int fds[2];
    if (::pipe(fds) != 0) std::abort();
    read_ = fds[0];
    write_ = fds[1];
    report_fd = write_;
  }
  ~Pipe() {
    ::close(read_);
    ::close(write_);
    report_fd = -1;
  }
  // Reads `size` bytes, waiting at most `timeout`; false if they did not come.
  bool read(void* out, std::size_t size, std::chrono::milliseconds timeout) {
    auto until = std::chrono::steady_clock::now() + timeout;
    auto* p = static_cast<char*>(out);
    while (size > 0) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          until - std::chrono::steady_clock::now());
      pollfd fd{read_, POLLIN, 0};
      if (left.count() < 0 || ::poll(&fd, 1, static_cast<int>(left.count())) <= 0) return false;
      ssize_t n = ::read(read_, p, size);
      if (n <= 0) return false;
      p += n;
      size -= static_cast<std::size_t>(n);
    }
    return true;
  }

 private:
  int read_ = -1;
  int write_ = -1;
};

bool contains(const std::vector<pid_t>& pids, pid_t pid) {
  return std::find(pids.begin(), pids.end(), pid) != pids.end();
}

// Waits (at most 10 s) until `pid` is no longer one of the pool's workers and all its slots are
// filled again.
bool replaced(Pool& pool, pid_t pid) {
  for (int i = 0; i < 1000; ++i) {
    auto pids = pool.worker_pids();
    if (!contains(pids, pid) && static_cast<int>(pids.size()) == pool.processes()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

TEST(PoolTimeout, ApplyAsyncTaskPastItsTimeoutFailsWithTimeoutErrorNamingTaskAndLimit) {
  Pool pool(2);
  auto started = std::chrono::steady_clock::now();
  auto r = pool.apply_async(timeouttest::square_or_loop, 3, TaskOptions{.timeout = 300ms});
  try {
    (void)r.get(10s);
    FAIL() << "no TimeoutError";
  } catch (const TimeoutError& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("timeouttest::square_or_loop"), std::string::npos) << what;
    EXPECT_NE(what.find("300 ms"), std::string::npos) << what;
    EXPECT_NE(what.find("killed"), std::string::npos) << what;
  }
  auto elapsed = std::chrono::steady_clock::now() - started;
  EXPECT_GE(elapsed, 290ms);
  EXPECT_LT(elapsed, 3s);
  EXPECT_TRUE(r.ready());
  EXPECT_FALSE(r.successful());
  EXPECT_FALSE(r.cancelled());
}

TEST(PoolTimeout, TimedOutWorkerIsReplacedAndThePoolGoesOn) {
  Pool pool(1);
  pid_t before = pool.apply(timeouttest::my_pid);
  auto r = pool.apply_async(timeouttest::square_or_loop, 8, TaskOptions{.timeout = 200ms});
  EXPECT_THROW((void)r.get(10s), TimeoutError);
  EXPECT_TRUE(replaced(pool, before));
  pid_t after = pool.apply(timeouttest::my_pid);
  EXPECT_NE(after, before);
  EXPECT_EQ(pool.apply(timeouttest::square, 7), 49);
  pool.close();
  pool.join();
}

TEST(PoolTimeout, OtherResultsAreNotLost) {
  Pool pool(2);
  std::vector<AsyncResult<int>> normal;
  auto runaway = pool.apply_async(timeouttest::square_or_loop, 13, TaskOptions{.timeout = 300ms});
  for (int i = 0; i < 40; ++i)
    normal.push_back(pool.apply_async(timeouttest::sleepy_square, i, 10));
  EXPECT_THROW((void)runaway.get(10s), TimeoutError);
  for (int i = 0; i < 40; ++i) EXPECT_EQ(normal[i].get(10s), i * i);
}

TEST(PoolTimeout, DeadlineCountsFromWhenAWorkerTakesTheTaskNotFromSubmission) {
  Pool pool(1);
  auto first = pool.apply_async(timeouttest::sleepy_square, 2, 700);
  // Waits ~700 ms in the queue, then runs 300 ms: within its 600 ms limit.
  auto second = pool.apply_async(timeouttest::sleepy_square, 3, 300, TaskOptions{.timeout = 600ms});
  EXPECT_EQ(first.get(10s), 4);
  EXPECT_EQ(second.get(10s), 9);
}

TEST(PoolTimeout, GetTimeoutOnlyStopsWaitingAndTheTaskKeepsRunning) {
  Pool pool(1);
  auto r = pool.apply_async(timeouttest::sleepy_square, 5, 400);
  try {
    (void)r.get(50ms);
    FAIL() << "no TimeoutError";
  } catch (const TimeoutError& e) {
    EXPECT_EQ(std::string(e.what()).find("ran longer"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(r.ready());
  EXPECT_EQ(r.get(10s), 25);
}

TEST(PoolTimeout, TaskThatFinishesInTimeIsUnaffected) {
  Pool pool(2);
  auto r = pool.apply_async(timeouttest::sleepy_square, 6, 50, TaskOptions{.timeout = 2s});
  EXPECT_EQ(r.get(10s), 36);
  std::vector<pid_t> pids = pool.worker_pids();
  EXPECT_EQ(pool.apply(timeouttest::square, 2), 4);
  EXPECT_EQ(pool.worker_pids(), pids);
}

TEST(PoolTimeout, ApplyOptionsTimeoutWithCallbacks) {
  Pool pool(1);
  std::promise<std::string> failed;
  auto r = pool.apply_async(timeouttest::square_or_loop, std::tuple{3},
                            {.error_callback =
                                 [&](std::exception_ptr e) {
                                   try {
                                     std::rethrow_exception(e);
                                   } catch (const TimeoutError& t) {
                                     failed.set_value(t.what());
                                   } catch (...) {
                                     failed.set_value("another error");
                                   }
                                 },
                             .timeout = 200ms});
  auto future = failed.get_future();
  ASSERT_EQ(future.wait_for(10s), std::future_status::ready);
  EXPECT_NE(future.get().find("ran longer than its timeout"), std::string::npos);
  EXPECT_THROW((void)r.get(), TimeoutError);
}

TEST(PoolTimeout, ImapTaskTimeoutFailsOnlyTheRunawayItemsInPlace) {
  Pool pool(2);
  std::vector<int> inputs(12);
  for (int i = 0; i < 12; ++i) inputs[i] = i;
  auto it = pool.imap(timeouttest::square_or_loop, inputs, {.task_timeout = 300ms});
  std::vector<std::string> seen;
  for (int i = 0; i < 12; ++i) {
    try {
      auto v = it.next(20s);
      ASSERT_TRUE(v.has_value());
      seen.push_back(std::to_string(*v));
    } catch (const TimeoutError&) {
      seen.push_back("timeout");
    }
  }
  EXPECT_FALSE(it.next(5s).has_value());
  for (int i = 0; i < 12; ++i)
    EXPECT_EQ(seen[i], i % 5 == 3 ? std::string("timeout") : std::to_string(i * i)) << i;
  EXPECT_EQ(pool.apply(timeouttest::square, 9), 81);
}

TEST(PoolTimeout, ImapUnorderedTaskTimeoutYieldsEveryOtherResult) {
  Pool pool(2);
  int timeouts = 0;
  std::vector<int> values;
  auto it = pool.imap_unordered(timeouttest::square_or_loop, std::vector{0, 1, 3, 4, 8},
                                {.task_timeout = 250ms});
  for (int i = 0; i < 5; ++i) {
    try {
      values.push_back(it.next(20s).value());
    } catch (const TimeoutError&) {
      ++timeouts;
    }
  }
  std::sort(values.begin(), values.end());
  EXPECT_EQ(timeouts, 2);
  EXPECT_EQ(values, (std::vector<int>{0, 1, 16}));
}

TEST(PoolTimeout, MapWithTaskTimeoutRaisesTheFirstTimeoutAfterEveryTaskIsIn) {
  Pool pool(2);
  std::vector<int> inputs{0, 1, 2, 3, 4, 5};
  EXPECT_THROW((void)pool.map(timeouttest::square_or_loop, inputs, {.task_timeout = 250ms}),
               TimeoutError);
  auto all =
      pool.map_async(timeouttest::square_or_loop, std::vector{0, 1, 2}, {.task_timeout = 250ms});
  EXPECT_EQ(all.get(10s), (std::vector<int>{0, 1, 4}));
}

TEST(PoolTimeout, StarmapWithTaskTimeout) {
  Pool pool(2);
  std::vector<std::pair<int, int>> args{{1, 2}, {3, 3}, {4, 5}};
  auto r = pool.starmap_async(timeouttest::loop_with, args, {.task_timeout = 250ms});
  EXPECT_THROW((void)r.get(10s), TimeoutError);
  EXPECT_EQ(pool.starmap(timeouttest::loop_with, std::vector<std::pair<int, int>>{{1, 2}, {4, 5}},
                         {.task_timeout = 2s}),
            (std::vector<int>{3, 9}));
}

TEST(PoolTimeout, WithAChunksizeTheLimitAppliesToTheWholeChunk) {
  Pool pool(1);
  auto it = pool.imap(timeouttest::square_or_loop, std::vector{0, 1, 2, 3, 4, 5},
                      {.chunksize = 3, .task_timeout = 250ms});
  std::vector<bool> failed;
  for (int i = 0; i < 6; ++i) {
    try {
      (void)it.next(20s);
      failed.push_back(false);
    } catch (const TimeoutError&) {
      failed.push_back(true);
    }
  }
  EXPECT_EQ(failed, (std::vector<bool>{false, false, false, true, true, true}));
}

TEST(PoolTimeout, KillGraceSendsSigtermFirst) {
  Pipe pipe;
  Pool pool(1);
  auto r = pool.apply_async(timeouttest::loop_catching_sigterm, 0,
                            TaskOptions{.timeout = 200ms, .kill_grace = 5s});
  int pid = 0;
  ASSERT_TRUE(pipe.read(&pid, sizeof pid, 10s));
  try {
    (void)r.get(10s);
    FAIL() << "no TimeoutError";
  } catch (const TimeoutError& e) {
    EXPECT_NE(std::string(e.what()).find("SIGTERM"), std::string::npos) << e.what();
  }
  char c = 0;
  ASSERT_TRUE(pipe.read(&c, 1, 10s));
  EXPECT_EQ(c, 'T');
  EXPECT_TRUE(replaced(pool, pid));
  EXPECT_EQ(pool.apply(timeouttest::square, 3), 9);
}

TEST(PoolTimeout, WorkerThatIgnoresSigtermIsKilledAfterTheGrace) {
  Pipe pipe;
  Pool pool(1);
  auto r = pool.apply_async(timeouttest::loop_ignoring_sigterm, 0,
                            TaskOptions{.timeout = 200ms, .kill_grace = 300ms});
  int pid = 0;
  ASSERT_TRUE(pipe.read(&pid, sizeof pid, 10s));
  EXPECT_THROW((void)r.get(10s), TimeoutError);
  EXPECT_TRUE(replaced(pool, pid));
  EXPECT_EQ(pool.apply(timeouttest::square, 4), 16);
}

TEST(PoolTimeout, NonPositiveTimeoutOrNegativeGraceIsAValueError) {
  Pool pool(1);
  EXPECT_THROW((void)pool.apply_async(timeouttest::square, 1, TaskOptions{.timeout = 0s}),
               ValueError);
  EXPECT_THROW((void)pool.apply_async(timeouttest::square, 1, TaskOptions{.kill_grace = -1s}),
               ValueError);
  EXPECT_THROW((void)pool.map(timeouttest::square, std::vector{1}, {.task_timeout = -5ms}),
               ValueError);
  EXPECT_EQ(pool.apply(timeouttest::square, 5), 25);
}

TEST(PoolTimeout, CloseAndJoinAfterATimeout) {
  Pool pool(2);
  auto r = pool.apply_async(timeouttest::square_or_loop, 3, TaskOptions{.timeout = 200ms});
  auto ok = pool.apply_async(timeouttest::sleepy_square, 2, 400);
  pool.close();
  EXPECT_THROW((void)r.get(10s), TimeoutError);
  EXPECT_EQ(ok.get(10s), 4);
  pool.join();
}

TEST(PoolMaxMemory, ZeroIsAValueError) {
  EXPECT_THROW(Pool(PoolOptions{.processes = 1, .max_memory_per_child = 0}), ValueError);
}

TEST(PoolMaxMemory, WorkerAboveTheLimitAfterATaskIsReplaced) {
  long baseline = 0;
  {
    Pool probe(1);
    baseline = probe.apply(timeouttest::resident_mib);
  }
  Pool pool(PoolOptions{.processes = 1,
                        .max_memory_per_child = static_cast<std::size_t>(baseline + 64) << 20});
  pid_t first = pool.apply(timeouttest::leak_mib, 1);
  EXPECT_EQ(pool.apply(timeouttest::leak_mib, 1), first);    // well under the limit: same worker
  EXPECT_EQ(pool.apply(timeouttest::leak_mib, 128), first);  // runs, then leaves
  pid_t next = pool.apply(timeouttest::my_pid);
  EXPECT_NE(next, first);
  EXPECT_EQ(pool.apply(timeouttest::my_pid), next);
  pool.close();
  pool.join();
}

}  // namespace
}  // namespace mproc
