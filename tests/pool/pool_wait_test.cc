// Pool results as futures (issue 9): AsyncResult::cancel/cancelled/add_done_callback,
// mproc::wait and mproc::as_completed (concurrent.futures), and Python 3.14's
// terminate_workers()/kill_workers() (parity 11.2, 11.4, 11.6).
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <future>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "mproc/pool.h"
#include "mproc/wait.h"

#include "pool_tasks.h"
#include "support.h"

namespace waittest {

using pooltasks::sleepy_square;
using pooltasks::square;

int fail_after(int millis) {
  std::this_thread::sleep_for(std::chrono::milliseconds(millis));
  throw std::invalid_argument("failed after " + std::to_string(millis) + " ms");
}
MPROC_TASK(waittest::fail_after);

int my_pid() { return static_cast<int>(::getpid()); }
MPROC_TASK(waittest::my_pid);

// A pipe made before the pool (its workers inherit it): tasks write to it, the test reads.
int report_fd = -1;
void report(char c) { (void)!::write(report_fd, &c, 1); }

// Writes 'r' (it ran) and returns x.
int mark_ran(int x) {
  report('r');
  return x;
}
MPROC_TASK(waittest::mark_ran);

void on_sigterm(int) {
  report('T');
  ::_exit(0);
}

// Writes 'a', sleeps `millis`, writes 'b'; SIGTERM writes 'T' and ends it.
int a_sleep_b(int millis) {
  ::signal(SIGTERM, on_sigterm);
  report('a');
  std::this_thread::sleep_for(std::chrono::milliseconds(millis));
  report('b');
  return millis;
}
MPROC_TASK(waittest::a_sleep_b);

// Writes 'a', then loops for ever.
int a_then_loop(int) {
  report('a');
  volatile bool forever = true;
  while (forever) {
  }
  return 0;
}
MPROC_TASK(waittest::a_then_loop);

// Ignores SIGTERM, writes 'a', then loops for ever.
int a_then_loop_ignoring_sigterm(int) {
  ::signal(SIGTERM, SIG_IGN);
  report('a');
  volatile bool forever = true;
  while (forever) {
  }
  return 0;
}
MPROC_TASK(waittest::a_then_loop_ignoring_sigterm);

}  // namespace waittest

namespace mproc {
namespace {

using namespace std::chrono_literals;

class Pipe {
 public:
  Pipe() {
    int fds[2];
    if (::pipe(fds) != 0) std::abort();
    read_ = fds[0];
    write_ = fds[1];
    waittest::report_fd = write_;
  }
  ~Pipe() {
    ::close(read_);
    ::close(write_);
    waittest::report_fd = -1;
  }
  // The next byte, or 0 if none came within `timeout`.
  char next(std::chrono::milliseconds timeout) {
    pollfd fd{read_, POLLIN, 0};
    if (::poll(&fd, 1, static_cast<int>(timeout.count())) <= 0) return 0;
    char c = 0;
    return ::read(read_, &c, 1) == 1 ? c : 0;
  }

 private:
  int read_ = -1;
  int write_ = -1;
};

bool replaced(Pool& pool, pid_t pid) {
  for (int i = 0; i < 1000; ++i) {
    auto pids = pool.worker_pids();
    bool gone = std::find(pids.begin(), pids.end(), pid) == pids.end();
    if (gone && static_cast<int>(pids.size()) == pool.processes()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

// ---- cancel ----

TEST(PoolCancel, QueuedTaskIsDroppedAndNeverRuns) {
  Pipe pipe;
  Pool pool(1);
  auto blocker = pool.apply_async(waittest::sleepy_square, 2, 300);
  auto victim = pool.apply_async(waittest::mark_ran, 7);
  EXPECT_TRUE(victim.cancel());
  EXPECT_TRUE(victim.cancelled());
  EXPECT_TRUE(victim.ready());
  EXPECT_FALSE(victim.successful());
  EXPECT_THROW((void)victim.get(), CancelledError);
  EXPECT_TRUE(victim.cancel());  // again: still cancelled
  EXPECT_EQ(blocker.get(10s), 4);
  // Work queued after it runs, on the same worker; the victim never did.
  EXPECT_EQ(pool.apply(waittest::mark_ran, 3), 3);
  EXPECT_EQ(pipe.next(5s), 'r');
  EXPECT_EQ(pipe.next(300ms), 0);
}

TEST(PoolCancel, RunningTaskIsNotCancelledWithoutInterrupt) {
  Pipe pipe;
  Pool pool(1);
  auto r = pool.apply_async(waittest::a_sleep_b, 400);
  ASSERT_EQ(pipe.next(10s), 'a');
  EXPECT_FALSE(r.cancel());
  EXPECT_FALSE(r.cancelled());
  EXPECT_EQ(r.get(10s), 400);
  EXPECT_EQ(pipe.next(5s), 'b');
}

TEST(PoolCancel, RunningTaskWithInterruptIsStoppedAndItsWorkerReplaced) {
  Pipe pipe;
  Pool pool(1);
  pid_t worker = pool.apply(waittest::my_pid);
  auto r = pool.apply_async(waittest::a_then_loop, 0);
  ASSERT_EQ(pipe.next(10s), 'a');
  EXPECT_TRUE(r.cancel({.interrupt = true}));
  EXPECT_TRUE(r.cancelled());
  EXPECT_THROW((void)r.get(1s), CancelledError);
  EXPECT_TRUE(replaced(pool, worker));
  EXPECT_EQ(pool.apply(waittest::square, 6), 36);
}

TEST(PoolCancel, InterruptWithAKillGraceSendsSigtermThenSigkill) {
  Pipe pipe;
  Pool pool(1);
  pid_t worker = pool.apply(waittest::my_pid);
  auto r =
      pool.apply_async(waittest::a_then_loop_ignoring_sigterm, 0, TaskOptions{.kill_grace = 300ms});
  ASSERT_EQ(pipe.next(10s), 'a');
  auto started = std::chrono::steady_clock::now();
  EXPECT_TRUE(r.cancel({.interrupt = true}));
  EXPECT_THROW((void)r.get(1s), CancelledError);
  EXPECT_TRUE(replaced(pool, worker));
  EXPECT_GE(std::chrono::steady_clock::now() - started, 250ms);  // it survived SIGTERM
  EXPECT_EQ(pool.apply(waittest::square, 6), 36);
}

TEST(PoolCancel, DoneResultCannotBeCancelled) {
  Pool pool(1);
  auto r = pool.apply_async(waittest::square, 3);
  EXPECT_EQ(r.get(10s), 9);
  EXPECT_FALSE(r.cancel());
  EXPECT_FALSE(r.cancel({.interrupt = true}));
  EXPECT_FALSE(r.cancelled());
  EXPECT_EQ(r.get(), 9);
}

TEST(PoolCancel, QueuedMapAsyncIsCancelledWhole) {
  Pipe pipe;
  Pool pool(1);
  auto blocker = pool.apply_async(waittest::sleepy_square, 1, 300);
  std::vector<int> inputs(50, 1);
  auto all = pool.map_async(waittest::mark_ran, inputs, {.chunksize = 5});
  EXPECT_TRUE(all.cancel());
  EXPECT_THROW((void)all.get(5s), CancelledError);
  EXPECT_EQ(blocker.get(10s), 1);
  EXPECT_EQ(pool.apply(waittest::square, 2), 4);
  EXPECT_EQ(pipe.next(300ms), 0);  // no item of the map ran
}

TEST(PoolCancel, StartedMapNeedsInterrupt) {
  Pipe pipe;
  Pool pool(1);
  auto all = pool.map_async(waittest::a_sleep_b, std::vector{300, 300, 300}, {.chunksize = 1});
  ASSERT_EQ(pipe.next(10s), 'a');
  EXPECT_FALSE(all.cancel());
  EXPECT_TRUE(all.cancel({.interrupt = true}));
  EXPECT_THROW((void)all.get(5s), CancelledError);
  EXPECT_EQ(pool.apply(waittest::square, 5), 25);
}

TEST(PoolCancel, CancelRightAfterSubmitThenCloseAndJoinDoNotHang) {  // gh-94440
  Pool pool(2);
  auto r = pool.apply_async(waittest::square, 4);
  (void)r.cancel();
  pool.close();
  pool.join();
  EXPECT_TRUE(r.ready());
  if (r.cancelled()) {
    EXPECT_THROW((void)r.get(), CancelledError);
  } else {
    EXPECT_EQ(r.get(), 16);
  }
}

TEST(PoolCancel, ManyCancelsAmongManyTasksLoseNothingElse) {
  Pool pool(2);
  std::vector<AsyncResult<int>> results;
  for (int i = 0; i < 200; ++i) results.push_back(pool.apply_async(waittest::square, i));
  std::vector<bool> cancelled(200, false);
  for (int i = 0; i < 200; i += 3) cancelled[i] = results[i].cancel();
  for (int i = 0; i < 200; ++i) {
    if (cancelled[i]) {
      EXPECT_THROW((void)results[i].get(10s), CancelledError) << i;
    } else {
      EXPECT_EQ(results[i].get(10s), i * i) << i;
    }
  }
}

TEST(PoolCancel, QueuedCancelsAmongManyTasksLoseNothingElse) {
  Pool pool(1);
  auto blocker = pool.apply_async(waittest::sleepy_square, 1, 200);
  std::vector<AsyncResult<int>> results;
  for (int i = 0; i < 300; ++i) results.push_back(pool.apply_async(waittest::square, i));
  int cancelled = 0;
  for (int i = 0; i < 300; i += 2) cancelled += results[i].cancel() ? 1 : 0;
  EXPECT_GT(cancelled, 100);
  for (int i = 0; i < 300; ++i) {
    if (results[i].cancelled()) {
      EXPECT_THROW((void)results[i].get(10s), CancelledError) << i;
    } else {
      EXPECT_EQ(results[i].get(10s), i * i) << i;
    }
  }
  EXPECT_EQ(blocker.get(10s), 1);
}

// A cancel of a map that has started is taken back: chunks that workers took meanwhile (and sent
// back unrun, seeing the cancel mark) are put back, so the map still completes whole.
TEST(PoolCancel, CancelRefusedOnAStartedMapLosesNoChunk) {
  Pool pool(2);
  std::vector<std::pair<int, int>> inputs(300);
  std::vector<int> squares(300);
  for (int i = 0; i < 300; ++i) {
    inputs[i] = {i, i % 10 == 0 ? 1 : 0};
    squares[i] = i * i;
  }
  int refused = 0;
  for (int round = 0; round < 20; ++round) {
    auto all = pool.starmap_async(waittest::sleepy_square, inputs, {.chunksize = 1});
    std::this_thread::sleep_for(3ms);  // some chunks have run
    bool cancelled = false;
    for (int i = 0; i < 200 && !cancelled && !all.ready(); ++i) {
      cancelled = all.cancel();
      refused += cancelled ? 0 : 1;
    }
    if (cancelled) {
      EXPECT_THROW((void)all.get(10s), CancelledError);
    } else {
      EXPECT_EQ(all.get(10s), squares) << "round " << round;
    }
  }
  EXPECT_GT(refused, 0);
}

// ---- add_done_callback ----

TEST(PoolDoneCallback, RunsOnceWhenTheResultIsReady) {
  Pool pool(1);
  std::promise<int> got;
  auto r = pool.apply_async(waittest::sleepy_square, 4, 100);
  r.add_done_callback([&](AsyncResult<int> done) { got.set_value(done.get()); });
  auto future = got.get_future();
  ASSERT_EQ(future.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(future.get(), 16);
}

TEST(PoolDoneCallback, RunsAtOnceInThisThreadWhenAlreadyDone) {
  Pool pool(1);
  auto r = pool.apply_async(waittest::square, 5);
  ASSERT_EQ(r.get(10s), 25);
  std::thread::id where;
  r.add_done_callback([&](AsyncResult<int>) { where = std::this_thread::get_id(); });
  EXPECT_EQ(where, std::this_thread::get_id());
}

TEST(PoolDoneCallback, RunsOnFailureAndOnCancelAndInOrder) {
  Pool pool(1);
  auto blocker = pool.apply_async(waittest::sleepy_square, 1, 200);
  auto failing = pool.apply_async(waittest::fail_after, 0);
  auto cancelled = pool.apply_async(waittest::square, 1);
  std::vector<std::string> order;
  std::mutex mutex;
  cancelled.add_done_callback([&](AsyncResult<int> r) {
    std::scoped_lock lock(mutex);
    order.push_back(r.cancelled() ? "cancelled-1" : "?");
  });
  cancelled.add_done_callback([&](AsyncResult<int>) {
    std::scoped_lock lock(mutex);
    order.push_back("cancelled-2");
  });
  std::promise<bool> failed;
  failing.add_done_callback([&](AsyncResult<int> r) { failed.set_value(!r.successful()); });
  EXPECT_TRUE(cancelled.cancel());
  EXPECT_EQ(order, (std::vector<std::string>{"cancelled-1", "cancelled-2"}));
  auto future = failed.get_future();
  ASSERT_EQ(future.wait_for(10s), std::future_status::ready);
  EXPECT_TRUE(future.get());
  EXPECT_EQ(blocker.get(10s), 1);
}

TEST(PoolDoneCallback, ThrowingCallbackIsLoggedAndTheOthersStillRun) {
  Pool pool(1);
  std::promise<void> second;
  auto r = pool.apply_async(waittest::sleepy_square, 2, 100);
  r.add_done_callback([](AsyncResult<int>) { throw std::runtime_error("callback failure"); });
  r.add_done_callback([&](AsyncResult<int>) { second.set_value(); });
  EXPECT_EQ(second.get_future().wait_for(10s), std::future_status::ready);
  EXPECT_EQ(r.get(), 4);
}

// ---- wait ----

TEST(PoolWait, FirstCompletedReturnsWhenOneIsDone) {
  Pool pool(2);
  std::vector<AsyncResult<int>> rs{pool.apply_async(waittest::sleepy_square, 1, 50),
                                   pool.apply_async(waittest::sleepy_square, 2, 3000)};
  double seconds = test::seconds_to_run([&] {
    auto [done, not_done] = wait(rs, {.return_when = FIRST_COMPLETED, .timeout = 20s});
    ASSERT_EQ(done.size(), 1u);
    ASSERT_EQ(not_done.size(), 1u);
    EXPECT_EQ(done[0].get(), 1);
  });
  EXPECT_LT(seconds, 2.0);
  EXPECT_TRUE(rs[1].cancel({.interrupt = true}));
}

TEST(PoolWait, FirstExceptionReturnsWhenOneFails) {
  Pool pool(2);
  std::vector<AsyncResult<int>> rs{pool.apply_async(waittest::fail_after, 100),
                                   pool.apply_async(waittest::sleepy_square, 2, 3000)};
  double seconds = test::seconds_to_run([&] {
    auto [done, not_done] = wait(rs, {.return_when = FIRST_EXCEPTION, .timeout = 20s});
    ASSERT_EQ(done.size(), 1u);
    EXPECT_THROW((void)done[0].get(), std::invalid_argument);
    EXPECT_EQ(not_done.size(), 1u);
  });
  EXPECT_LT(seconds, 2.0);
  EXPECT_TRUE(rs[1].cancel({.interrupt = true}));
}

TEST(PoolWait, FirstExceptionWithoutFailuresWaitsForAll) {
  Pool pool(2);
  std::vector<AsyncResult<int>> rs{pool.apply_async(waittest::sleepy_square, 1, 50),
                                   pool.apply_async(waittest::sleepy_square, 2, 200)};
  auto [done, not_done] = wait(rs, {.return_when = FIRST_EXCEPTION, .timeout = 20s});
  EXPECT_EQ(done.size(), 2u);
  EXPECT_TRUE(not_done.empty());
}

TEST(PoolWait, AllCompletedWaitsForEveryResult) {
  Pool pool(2);
  std::vector<AsyncResult<int>> rs;
  for (int i = 0; i < 6; ++i) rs.push_back(pool.apply_async(waittest::sleepy_square, i, 50));
  auto [done, not_done] = wait(rs);
  EXPECT_EQ(done.size(), 6u);
  EXPECT_TRUE(not_done.empty());
  for (int i = 0; i < 6; ++i) EXPECT_EQ(done[i].get(), i * i);  // in the order given
}

TEST(PoolWait, TimeoutReturnsWhatIsDoneWithoutThrowing) {
  Pool pool(2);
  std::vector<AsyncResult<int>> rs{pool.apply_async(waittest::square, 3),
                                   pool.apply_async(waittest::sleepy_square, 2, 3000)};
  (void)rs[0].get(10s);
  auto started = std::chrono::steady_clock::now();
  auto [done, not_done] = wait(rs, {.timeout = 200ms});
  auto elapsed = std::chrono::steady_clock::now() - started;
  EXPECT_GE(elapsed, 190ms);
  EXPECT_LT(elapsed, 2s);
  EXPECT_EQ(done.size(), 1u);
  EXPECT_EQ(not_done.size(), 1u);
  EXPECT_TRUE(rs[1].cancel({.interrupt = true}));
}

TEST(PoolWait, CancelledResultCountsAsDoneButNotAsException) {
  Pool pool(1);
  auto blocker = pool.apply_async(waittest::sleepy_square, 1, 300);
  auto queued = pool.apply_async(waittest::square, 2);
  ASSERT_TRUE(queued.cancel());
  std::vector<AsyncResult<int>> rs{queued, blocker};
  auto [done, not_done] = wait(rs, {.return_when = FIRST_EXCEPTION, .timeout = 20s});
  EXPECT_EQ(done.size(), 2u);  // the cancel did not end the wait: the blocker finished too
  EXPECT_TRUE(not_done.empty());
}

TEST(PoolWait, EmptyInputReturnsAtOnceAndFdWaitStillWorks) {
  std::vector<AsyncResult<int>> none;
  auto [done, not_done] = wait(none, {.return_when = FIRST_COMPLETED});
  EXPECT_TRUE(done.empty());
  EXPECT_TRUE(not_done.empty());
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  EXPECT_TRUE(mproc::wait({fds[0]}, 10ms).empty());  // mproc/wait.h's overload
  ::close(fds[1]);
  EXPECT_EQ(mproc::wait({fds[0]}, 1s), std::vector<int>{fds[0]});
  ::close(fds[0]);
}

TEST(PoolWait, WokenByResultsFromSeveralThreads) {
  Pool pool(2);
  std::vector<AsyncResult<int>> rs;
  for (int i = 0; i < 20; ++i) rs.push_back(pool.apply_async(waittest::sleepy_square, i, 20));
  std::vector<std::thread> waiters;
  std::atomic<int> ok{0};
  for (int t = 0; t < 3; ++t)
    waiters.emplace_back([&] {
      auto [done, not_done] = wait(rs, {.timeout = 20s});
      if (done.size() == 20 && not_done.empty()) ++ok;
    });
  for (auto& t : waiters) t.join();
  EXPECT_EQ(ok.load(), 3);
}

// ---- as_completed ----

TEST(PoolAsCompleted, YieldsInCompletionOrder) {
  Pool pool(3);
  std::vector<AsyncResult<int>> rs{pool.apply_async(waittest::sleepy_square, 3, 600),
                                   pool.apply_async(waittest::sleepy_square, 1, 50),
                                   pool.apply_async(waittest::sleepy_square, 2, 300)};
  std::vector<int> order;
  for (auto& r : as_completed(rs, 20s)) order.push_back(r.get());
  EXPECT_EQ(order, (std::vector<int>{1, 4, 9}));
}

TEST(PoolAsCompleted, ReadyOnesFirstInTheOrderGiven) {
  Pool pool(2);
  std::vector<AsyncResult<int>> rs;
  for (int i = 0; i < 5; ++i) rs.push_back(pool.apply_async(waittest::square, i));
  for (auto& r : rs) (void)r.get(10s);
  std::vector<int> order;
  for (auto& r : as_completed(rs)) order.push_back(r.get());
  EXPECT_EQ(order, (std::vector<int>{0, 1, 4, 9, 16}));
}

TEST(PoolAsCompleted, TimeoutThrowsAfterTheReadyOnes) {
  Pool pool(2);
  std::vector<AsyncResult<int>> rs{pool.apply_async(waittest::square, 2),
                                   pool.apply_async(waittest::sleepy_square, 3, 3000)};
  (void)rs[0].get(10s);
  auto it = as_completed(rs, 200ms);
  auto first = it.next();
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->get(), 4);
  try {
    (void)it.next();
    FAIL() << "no TimeoutError";
  } catch (const TimeoutError& e) {
    EXPECT_NE(std::string(e.what()).find("1 (of 2)"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(rs[1].cancel({.interrupt = true}));
}

// ---- terminate_workers / kill_workers ----

TEST(PoolForceShutdown, TerminateWorkersSendsSigtermCancelsQueuedAndFailsRunning) {
  Pipe pipe;
  Pool pool(1);
  auto running = pool.apply_async(waittest::a_sleep_b, 5000);
  auto queued = pool.apply_async(waittest::square, 3);
  ASSERT_EQ(pipe.next(10s), 'a');
  pool.terminate_workers();
  EXPECT_EQ(pipe.next(5s), 'T');   // the worker got SIGTERM
  EXPECT_EQ(pipe.next(300ms), 0);  // and never reached its second write
  EXPECT_THROW((void)running.get(1s), ProcessError);
  EXPECT_FALSE(running.cancelled());
  EXPECT_THROW((void)queued.get(1s), CancelledError);
  EXPECT_TRUE(queued.cancelled());
  EXPECT_THROW((void)pool.apply_async(waittest::square, 1), ValueError);
  pool.join();
  EXPECT_TRUE(pool.worker_pids().empty());
}

TEST(PoolForceShutdown, KillWorkersSendsSigkill) {
  Pipe pipe;
  Pool pool(2);
  auto running = pool.apply_async(waittest::a_sleep_b, 5000);
  ASSERT_EQ(pipe.next(10s), 'a');
  pool.kill_workers();
  EXPECT_EQ(pipe.next(500ms), 0);  // no SIGTERM handler ran, no second write
  EXPECT_THROW((void)running.get(1s), ProcessError);
  EXPECT_THROW((void)pool.map(waittest::square, std::vector{1, 2}), ValueError);
  pool.join();
}

TEST(PoolForceShutdown, WorkersAreNotReplacedAfterwards) {
  Pool pool(2);
  std::vector<pid_t> pids;
  for (int i = 0; i < 100 && pids.size() < 2; ++i) {
    pids = pool.worker_pids();
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_EQ(pids.size(), 2u);
  pool.kill_workers();
  bool all_gone = false;
  for (int i = 0; i < 500 && !all_gone; ++i) {
    all_gone = pool.worker_pids().empty();
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(all_gone);
  std::this_thread::sleep_for(100ms);
  EXPECT_TRUE(pool.worker_pids().empty());
  pool.join();
}

// Parity 11.2 test_force_shutdown_during_max_tasks_worker_exit.
TEST(PoolForceShutdown, DuringAMaxtasksExitNothingIsReplacedAndQueuedTasksAreCancelled) {
  Pool pool(PoolOptions{.processes = 1, .maxtasksperchild = 1});
  auto first = pool.apply_async(waittest::square, 1);
  std::vector<AsyncResult<int>> queued;
  for (int i = 0; i < 5; ++i) queued.push_back(pool.apply_async(waittest::sleepy_square, i, 200));
  EXPECT_EQ(first.get(10s), 1);  // its worker leaves now, replaced by a fresh one
  pool.kill_workers();
  int cancelled = 0;
  for (auto& r : queued) {
    try {
      (void)r.get(5s);
      ADD_FAILURE() << "a task completed after kill_workers";
    } catch (const CancelledError& e) {
      ++cancelled;
      EXPECT_NE(std::string(e.what()).find("forcefully shut down"), std::string::npos);
    } catch (const ProcessError& e) {  // the one a worker had taken
      EXPECT_NE(std::string(e.what()).find("forcefully shut down"), std::string::npos);
    }
  }
  EXPECT_GE(cancelled, 4);
  bool none = false;
  for (int i = 0; i < 500 && !none; ++i) {
    none = pool.worker_pids().empty();
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(none);
  pool.join();
}

TEST(PoolForceShutdown, RepeatedOrOnABrokenPoolIsANoOp) {
  Pool broken(
      PoolOptions{.processes = 1, .initializer = [] { throw std::runtime_error("no init"); }});
  EXPECT_THROW((void)broken.apply(waittest::square, 1), ProcessError);
  EXPECT_NO_THROW(broken.terminate_workers());
  EXPECT_NO_THROW(broken.kill_workers());
  EXPECT_NO_THROW(broken.terminate());
  broken.join();

  Pool pool(1);
  pool.kill_workers();
  EXPECT_NO_THROW(pool.kill_workers());
  EXPECT_NO_THROW(pool.terminate_workers());
  pool.join();
  EXPECT_NO_THROW(pool.kill_workers());  // after join too
}

}  // namespace
}  // namespace mproc
