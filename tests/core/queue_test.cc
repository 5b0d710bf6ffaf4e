// Queue, JoinableQueue, SimpleQueue: the behaviours of CPython's _TestQueue and TestSimpleQueue
// (parity section 3), then mproc's own (out-of-line items, overflow, attach, wake-ups).
#include "mproc/queue.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "mproc/errors.h"
#include "mproc/shm.h"

#include "support.h"

namespace mproc {
namespace {

using namespace std::chrono_literals;
using test::fork_and_wait;
using test::fork_child;
using test::seconds_to_run;
using test::wait_child;

// A blocking call with timeout t returns no earlier than t - 100 ms and not much later (the
// machine is shared and loaded: "not much" is generous).
void expect_about(double seconds, double expected) {
  EXPECT_GE(seconds, expected - 0.1);
  EXPECT_LT(seconds, expected + 1.5);
}

// At once: well under the shortest timeout used below.
void expect_immediate(double seconds) { EXPECT_LT(seconds, 0.1); }

bool still_running(pid_t pid) { return ::waitpid(pid, nullptr, WNOHANG) == 0; }

// ---- _TestQueue.test_put ----

TEST(Queue, EmptyAndFullReportCorrectly) {
  Queue<int> q(6);
  EXPECT_TRUE(q.empty());
  EXPECT_FALSE(q.full());
  for (int i = 0; i < 6; ++i) q.put(i);
  EXPECT_FALSE(q.empty());
  EXPECT_TRUE(q.full());
}

TEST(Queue, EveryPutFormWorks) {
  Queue<int> q(6);
  q.put(1);
  q.put(2, true);
  q.put(3, true, std::nullopt);
  q.put(4, false);
  q.put(5, false, std::nullopt);
  q.put_nowait(6);
  EXPECT_EQ(q.qsize(), 6u);
  for (int i = 1; i <= 6; ++i) EXPECT_EQ(q.get(), i);
}

TEST(Queue, NonBlockingPutOnFullRaisesFullAtOnceIgnoringTheTimeout) {
  Queue<int> q(2);
  q.put(1);
  q.put(2);
  expect_immediate(seconds_to_run([&] { EXPECT_THROW(q.put(3, false), Full); }));
  expect_immediate(seconds_to_run([&] { EXPECT_THROW(q.put(3, false, 2.0), Full); }));
  expect_immediate(seconds_to_run([&] { EXPECT_THROW(q.put_nowait(3), Full); }));
  EXPECT_EQ(q.qsize(), 2u);
}

TEST(Queue, BlockingPutWithTimeoutRaisesFullAfterTheTimeout) {
  Queue<int> q(1);
  q.put(1);
  expect_about(seconds_to_run([&] { EXPECT_THROW(q.put(2, true, 0.3), Full); }), 0.3);
  expect_about(seconds_to_run([&] { EXPECT_THROW(q.put(2, 300ms), Full); }), 0.3);
  expect_about(seconds_to_run([&] { EXPECT_THROW(q.put(2, Deadline::after(300ms)), Full); }), 0.3);
}

TEST(Queue, ChildDrainingAFullQueueLeavesItEmptyAndNotFull) {
  Queue<int> q(6);
  for (int i = 0; i < 6; ++i) q.put(i);
  auto child = fork_and_wait([&] {
    for (int i = 0; i < 6; ++i)
      if (q.get(5s) != i) return 1;
    return 0;
  });
  EXPECT_EQ(child.code, 0);
  EXPECT_TRUE(q.empty());
  EXPECT_FALSE(q.full());
  EXPECT_EQ(q.qsize(), 0u);
}

TEST(Queue, PutBlockedOnAFullQueueIsWokenByAGetInAnotherProcess) {
  Queue<int> q(1);
  q.put(1);
  pid_t pid = fork_child([&] {
    std::this_thread::sleep_for(300ms);
    return q.get(5s) == 1 ? 0 : 1;
  });
  double took = seconds_to_run([&] { q.put(2, 10s); });
  EXPECT_EQ(wait_child(pid).code, 0);
  EXPECT_GE(took, 0.2);
  EXPECT_LT(took, 5.0);
  EXPECT_EQ(q.get_nowait(), 2);
}

// ---- _TestQueue.test_get ----

TEST(Queue, EveryGetFormReturnsItemsInFifoOrder) {
  Queue<int> q;
  for (int i = 1; i <= 6; ++i) q.put(i);
  EXPECT_EQ(q.get(true, std::nullopt), 1);
  EXPECT_EQ(q.get(true), 2);
  EXPECT_EQ(q.get(true, 1.0), 3);
  EXPECT_EQ(q.get(1s), 4);
  EXPECT_EQ(q.get(Deadline::after(1s)), 5);
  EXPECT_EQ(q.get_nowait(), 6);
}

TEST(Queue, GetIntoReusesTheStorageOfTheItemItFills) {
  Queue<std::string> q;
  q.put(std::string(100, 'a'));
  q.put("short");
  std::string item;
  item.reserve(1000);
  const char* storage = item.data();
  q.get_into(item);
  EXPECT_EQ(item, std::string(100, 'a'));
  q.get_into(item, 1s);
  EXPECT_EQ(item, "short");
  EXPECT_EQ(item.data(), storage);  // no allocation: the reserved buffer took both items

  Queue<std::vector<std::int32_t>> numbers;
  numbers.put({1, 2, 3});
  std::vector<std::int32_t> got;
  got.reserve(64);
  const std::int32_t* first = got.data();
  numbers.get_into(got, Deadline::after(1s));
  EXPECT_EQ(got, (std::vector<std::int32_t>{1, 2, 3}));
  EXPECT_EQ(got.data(), first);
}

TEST(Queue, GetIntoDecodesEveryKindOfItemAndTimesOutOnEmpty) {
  Queue<std::map<int, std::string>> q;  // encoded through Boost.Serialization
  q.put({{1, "one"}, {2, "two"}});
  std::map<int, std::string> item{{9, "stale"}};
  q.get_into(item);
  EXPECT_EQ(item, (std::map<int, std::string>{{1, "one"}, {2, "two"}}));
  expect_immediate(seconds_to_run([&] { EXPECT_THROW(q.get_into(item, Deadline::now()), Empty); }));

  SimpleQueue<double> simple;
  simple.put(2.5);
  double value = 0;
  simple.get_into(value);
  EXPECT_EQ(value, 2.5);

  JoinableQueue<int> joinable;
  joinable.put(7);
  int n = 0;
  joinable.get_into(n, 1s);
  EXPECT_EQ(n, 7);
  joinable.task_done();
  EXPECT_TRUE(joinable.join(1s));
}

TEST(Queue, NonBlockingGetOnEmptyRaisesEmptyAtOnce) {
  Queue<int> q;
  expect_immediate(seconds_to_run([&] { EXPECT_THROW((void)q.get(false), Empty); }));
  expect_immediate(seconds_to_run([&] { EXPECT_THROW((void)q.get_nowait(), Empty); }));
  expect_immediate(seconds_to_run([&] { EXPECT_THROW((void)q.get(false, 2.0), Empty); }));
}

TEST(Queue, GetOnEmptyWithTimeoutThrowsEmptyAfterTheTimeout) {
  Queue<int> q;
  expect_about(seconds_to_run([&] { EXPECT_THROW((void)q.get(true, 0.3), Empty); }), 0.3);
  expect_about(seconds_to_run([&] { EXPECT_THROW((void)q.get(300ms), Empty); }), 0.3);
}

// ---- _TestQueue.test_timeout ----

TEST(Queue, GetWithTimeout200msWaitsAtLeast100ms) {
  Queue<int> q;
  double took = seconds_to_run([&] { EXPECT_THROW((void)q.get(true, 0.2), Empty); });
  EXPECT_GE(took, 0.1);
}

TEST(Queue, NegativeTimeoutIsAValueError) {
  Queue<int> q;
  EXPECT_THROW((void)q.get(true, -1.0), ValueError);
  EXPECT_THROW(q.put(1, true, -1.0), ValueError);
}

TEST(Queue, GetBlockedOnEmptyIsWokenByAPutInAnotherProcess) {
  Queue<std::string> q;
  pid_t pid = fork_child([&] {
    std::this_thread::sleep_for(200ms);
    q.put("wake");
    return 0;
  });
  std::string got;
  double took = seconds_to_run([&] { got = q.get(10s); });
  EXPECT_EQ(wait_child(pid).code, 0);
  EXPECT_EQ(got, "wake");
  EXPECT_GE(took, 0.1);
  EXPECT_LT(took, 5.0);
}

// ---- _TestQueue.test_fork ----

TEST(Queue, ItemsOfParentAndForkedChildArriveInOrder) {
  Queue<int> q;
  for (int i = 0; i < 10; ++i) q.put(i);
  auto child = fork_and_wait([&] {
    for (int i = 10; i < 20; ++i) q.put(i);
    return 0;
  });
  ASSERT_EQ(child.code, 0);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(q.get(1s), i);
  EXPECT_THROW((void)q.get(false), Empty);
}

// ---- _TestQueue.test_qsize ----

TEST(Queue, QsizeTracksPutsAndGets) {
  Queue<int> q;
  EXPECT_EQ(q.qsize(), 0u);
  q.put(1);
  EXPECT_EQ(q.qsize(), 1u);
  q.put(2);
  EXPECT_EQ(q.qsize(), 2u);
  (void)q.get();
  EXPECT_EQ(q.qsize(), 1u);
  (void)q.get();
  EXPECT_EQ(q.qsize(), 0u);
}

// ---- _TestQueue.test_task_done ----

TEST(JoinableQueue, JoinReturnsOnceFourWorkersDidTaskDoneForEveryItem) {
  JoinableQueue<std::optional<int>> q;
  std::vector<pid_t> workers;
  for (int w = 0; w < 4; ++w) {
    workers.push_back(fork_child([&] {
      for (;;) {
        std::optional<int> item = q.get(10s);
        if (!item) {
          q.task_done();
          return 0;
        }
        std::this_thread::sleep_for(10ms);
        q.task_done();
      }
    }));
  }
  for (int i = 0; i < 10; ++i) q.put(i);
  EXPECT_TRUE(q.join(10s));
  EXPECT_EQ(q.qsize(), 0u);
  for (int w = 0; w < 4; ++w) q.put(std::nullopt);
  for (pid_t pid : workers) EXPECT_EQ(wait_child(pid).code, 0);
  EXPECT_TRUE(q.join(1s));
}

TEST(JoinableQueue, TaskDoneMoreOftenThanItemsIsAValueError) {
  JoinableQueue<int> q;
  q.put(1);
  (void)q.get();
  q.task_done();
  EXPECT_THROW(q.task_done(), ValueError);
}

TEST(JoinableQueue, JoinWithTimeoutReturnsFalseWhileTasksAreUnfinished) {
  JoinableQueue<int> q;
  q.put(1);
  double took = seconds_to_run([&] { EXPECT_FALSE(q.join(300ms)); });
  expect_about(took, 0.3);
  (void)q.get();
  q.task_done();
  EXPECT_TRUE(q.join(0s));
}

// ---- _TestQueue.test_queue_feeder_donot_stop_onexc / on_queue_feeder_error [ADAPT] ----

// A value whose encoding fails on demand (Python's unpicklable object).
struct Touchy {
  bool fail = false;
  int value = 0;
  template <class Ar>
  void serialize(Ar& ar, unsigned) {
    if (fail) throw std::runtime_error("cannot serialize this one");
    ar& value;
  }
};

TEST(Queue, AnUnserializableItemThrowsFromPutAndTheNextPutIsDelivered) {
  Queue<Touchy> q;
  EXPECT_THROW(q.put(Touchy{true, 1}), std::runtime_error);
  q.put(Touchy{false, 2});
  EXPECT_EQ(q.get(1s).value, 2);
}

TEST(Queue, AFailedPutLeavesTheSizeAccountingOfABoundedQueueIntact) {
  Queue<Touchy> q(1);
  EXPECT_THROW(q.put(Touchy{true, 1}), std::runtime_error);
  q.put(Touchy{false, 2}, 1s);  // the failed put took no room
  EXPECT_EQ(q.qsize(), 1u);
  EXPECT_EQ(q.get(1s).value, 2);
  EXPECT_TRUE(q.empty());
}

TEST(Queue, AnItemOfAnotherTypeThrowsSerializationErrorAndTheQueueGoesOn) {
  Queue<std::string> q;
  q.put("not an int");
  q.put("next");
  auto as_int = Queue<int>::attach(q.name());
  EXPECT_THROW((void)as_int.get(1s), SerializationError);
  EXPECT_EQ(q.get(1s), "next");
}

// ---- _TestQueue.test_closed_queue_empty_exceptions ----

TEST(Queue, CloseAndJoinThreadOnAnUnusedQueueAreNoOpsAndEmptyStaysTrue) {
  Queue<int> q;
  q.close();
  q.join_thread();
  EXPECT_TRUE(q.empty());
  JoinableQueue<int> jq;
  jq.close();
  jq.join_thread();
  EXPECT_TRUE(jq.empty());
}

TEST(Queue, EmptyAfterUseAndCloseRaisesOSError) {
  for (int joinable = 0; joinable < 2; ++joinable) {
    Queue<int> plain;
    JoinableQueue<int> jq;
    Queue<int>& q = joinable ? jq : plain;
    q.put(1);
    (void)q.get();
    q.close();
    q.join_thread();
    try {
      (void)q.empty();
      ADD_FAILURE() << "empty() after close did not throw";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), EBADF);
      EXPECT_NE(std::string(e.what()).find("is closed"), std::string::npos);
    }
  }
}

// ---- _TestQueue.test_closed_queue_put_get_exceptions ----

TEST(Queue, PutAndGetAfterCloseRaiseValueError) {
  for (int joinable = 0; joinable < 2; ++joinable) {
    Queue<int> plain;
    JoinableQueue<int> jq;
    Queue<int>& q = joinable ? jq : plain;
    q.close();
    try {
      q.put(1);
      ADD_FAILURE() << "put after close did not throw";
    } catch (const ValueError& e) {
      EXPECT_NE(std::string(e.what()).find("is closed"), std::string::npos);
    }
    EXPECT_THROW((void)q.get(), ValueError);
  }
}

TEST(Queue, CloseInAChildLeavesTheParentsHandleOpen) {
  Queue<int> q;
  auto child = fork_and_wait([&] {
    q.put(7);
    q.close();
    return 0;
  });
  ASSERT_EQ(child.code, 0);
  EXPECT_EQ(q.get(1s), 7);
}

// ---- _TestQueue.test_shutdown_empty ----

TEST(Queue, ShutdownOfAnEmptyQueueMakesPutAndGetRaiseShutDownInEveryProcess) {
  JoinableQueue<int> q;
  pid_t joiner = fork_child([&] { return q.join(10s) ? 0 : 1; });
  q.shutdown();
  EXPECT_TRUE(q.is_shutdown());
  EXPECT_EQ(q.qsize(), 0u);
  EXPECT_EQ(wait_child(joiner).code, 0);
  EXPECT_THROW(q.put(1), ShutDown);
  EXPECT_THROW(q.put_nowait(1), ShutDown);
  EXPECT_THROW((void)q.get(), ShutDown);
  EXPECT_THROW((void)q.get_nowait(), ShutDown);
  auto child = fork_and_wait([&] {
    int raised = 0;
    try {
      q.put(1);
    } catch (const ShutDown&) {
      ++raised;
    }
    try {
      q.put_nowait(1);
    } catch (const ShutDown&) {
      ++raised;
    }
    try {
      (void)q.get(1s);
    } catch (const ShutDown&) {
      ++raised;
    }
    return raised == 3 ? 0 : 1;
  });
  EXPECT_EQ(child.code, 0);
}

TEST(Queue, ShutdownWakesAGetBlockedInAnotherProcess) {
  Queue<int> q;
  pid_t getter = fork_child([&] {
    try {
      (void)q.get(10s);
    } catch (const ShutDown&) {
      return 0;
    }
    return 1;
  });
  std::this_thread::sleep_for(200ms);
  q.shutdown();
  auto exit = wait_child(getter, 5s);
  EXPECT_FALSE(exit.timed_out);
  EXPECT_EQ(exit.code, 0);
}

TEST(Queue, ShutdownWakesAPutBlockedOnAFullQueue) {
  Queue<int> q(1);
  q.put(1);
  pid_t putter = fork_child([&] {
    try {
      q.put(2, 10s);
    } catch (const ShutDown&) {
      return 0;
    }
    return 1;
  });
  std::this_thread::sleep_for(200ms);
  q.shutdown();
  auto exit = wait_child(putter, 5s);
  EXPECT_FALSE(exit.timed_out);
  EXPECT_EQ(exit.code, 0);
}

// ---- _TestQueue.test_shutdown_nonempty ----

TEST(Queue, AfterGracefulShutdownTheRemainingItemIsStillGettable) {
  JoinableQueue<int> q(1);
  q.put(42);
  pid_t joiner = fork_child([&] { return q.join(10s) ? 0 : 1; });
  q.shutdown();
  EXPECT_THROW(q.put(1), ShutDown);
  EXPECT_EQ(q.get(1s), 42);
  EXPECT_THROW((void)q.get(1s), ShutDown);
  EXPECT_THROW(q.put_nowait(1), ShutDown);
  std::this_thread::sleep_for(200ms);
  EXPECT_TRUE(still_running(joiner)) << "join returned before the matching task_done";
  q.task_done();
  EXPECT_EQ(wait_child(joiner, 5s).code, 0);
}

// ---- _TestQueue.test_shutdown_immediate ----

TEST(Queue, ImmediateShutdownDiscardsItemsAndReleasesJoiners) {
  JoinableQueue<int> q;
  q.put(1);
  q.put(2);
  pid_t joiner = fork_child([&] { return q.join(10s) ? 0 : 1; });
  q.shutdown(true);
  EXPECT_EQ(q.qsize(), 0u);
  EXPECT_EQ(wait_child(joiner, 5s).code, 0);
  EXPECT_THROW(q.put(3), ShutDown);
  EXPECT_THROW((void)q.get(), ShutDown);
  EXPECT_THROW(q.task_done(), ValueError);  // the discarded items were counted as done
}

// ---- _TestQueue.test_shutdown_immediate_with_unfinished ----

TEST(Queue, ImmediateShutdownWaitsForTheTaskAlreadyTaken) {
  JoinableQueue<int> q;
  q.put(1);
  q.put(2);
  EXPECT_EQ(q.get(), 1);
  pid_t joiner = fork_child([&] { return q.join(10s) ? 0 : 1; });
  q.shutdown(true);
  EXPECT_EQ(q.qsize(), 0u);
  std::this_thread::sleep_for(200ms);
  EXPECT_TRUE(still_running(joiner)) << "join returned before the outstanding task_done";
  q.task_done();
  EXPECT_EQ(wait_child(joiner, 5s).code, 0);
  EXPECT_THROW(q.task_done(), ValueError);
}

// ---- TestSimpleQueue ----

TEST(SimpleQueue, EmptyAfterCloseRaisesOSErrorEvenIfNeverUsed) {
  SimpleQueue<int> q;
  q.close();
  EXPECT_THROW((void)q.empty(), std::system_error);
}

TEST(SimpleQueue, EmptyIsCorrectAcrossProcesses) {
  SimpleQueue<int> q;
  EXPECT_TRUE(q.empty());
  auto child = fork_and_wait([&] {
    q.put(1);
    q.put(2);
    return 0;
  });
  ASSERT_EQ(child.code, 0);
  EXPECT_FALSE(q.empty());
  EXPECT_EQ(q.get(), 1);
  EXPECT_EQ(q.get(), 2);
  EXPECT_TRUE(q.empty());
}

TEST(SimpleQueue, CloseTwiceDoesNotFail) {
  SimpleQueue<int> q;
  q.close();
  EXPECT_NO_THROW(q.close());
}

TEST(SimpleQueue, PutAndGetAfterCloseRaiseValueError) {
  SimpleQueue<int> q;
  q.close();
  EXPECT_THROW(q.put(1), ValueError);
  EXPECT_THROW((void)q.get(), ValueError);
}

// ---- mproc's own ----

TEST(ByteQueue, GetWithClaimHandsTheItemToTheClaim) {
  detail::ByteQueue q(QueueOptions{});
  q.put("first", Deadline::never());
  q.put("second", Deadline::never());
  std::string out, claimed;
  q.get(out, Deadline::never(), [&](std::string_view item) { claimed = item; });
  EXPECT_EQ(out, "first");
  EXPECT_EQ(claimed, "first");
  EXPECT_EQ(q.qsize(), 1u);
}

TEST(ByteQueue, TheCountReadWithoutTheLockFollowsEveryCommitInTheRingAndOutOfIt) {
  // A ring of 4 KiB: the 3 KiB items go out of line (parcels, then an overflow chunk).
  detail::ByteQueue q(QueueOptions{.capacity = 4096});
  const std::string large(3000, 'x');
  EXPECT_EQ(q.approx_qsize(), 0u);
  q.put("small", Deadline::never());
  for (int i = 0; i < 3; ++i) q.put(large, Deadline::never());
  EXPECT_EQ(q.approx_qsize(), 4u);
  EXPECT_EQ(q.approx_qsize(), q.qsize());
  std::string out;
  for (int left = 3; left >= 0; --left) {
    q.get(out, Deadline::now());
    EXPECT_EQ(q.approx_qsize(), static_cast<std::size_t>(left));
  }
  EXPECT_THROW(q.get(out, Deadline::now()), Empty);
  EXPECT_EQ(q.approx_qsize(), 0u);
}

TEST(ByteQueue, AThrowingClaimLeavesTheItemQueued) {
  detail::ByteQueue q(QueueOptions{});
  q.put("only", Deadline::never());
  std::string out;
  EXPECT_THROW(q.get(out, Deadline::never(),
                     [](std::string_view) { throw std::runtime_error("claim failed"); }),
               std::runtime_error);
  EXPECT_EQ(q.qsize(), 1u);
  q.get(out, Deadline::now());
  EXPECT_EQ(out, "only");
}

TEST(Queue, CopiesAreHandlesToTheSameQueue) {
  Queue<int> q;
  Queue<int> copy = q;
  copy.put(5);
  EXPECT_EQ(q.qsize(), 1u);
  EXPECT_EQ(q.get(), 5);
  EXPECT_EQ(copy.name(), q.name());
}

TEST(Queue, AttachByNameReachesTheSameQueue) {
  Queue<std::string> q;
  auto child = fork_and_wait([name = q.name()] {
    auto other = Queue<std::string>::attach(name);
    other.put("from attach");
    return 0;
  });
  ASSERT_EQ(child.code, 0);
  EXPECT_EQ(q.get(1s), "from attach");
}

TEST(Queue, AttachToSomethingThatIsNotAQueueFails) {
  EXPECT_THROW((void)Queue<int>::attach("mproc-1-does-not-exist"), std::system_error);
  auto segment = SharedSegment::create(8192);
  EXPECT_THROW((void)Queue<int>::attach(segment.name()), ValueError);
}

std::string pattern(std::size_t size, std::uint32_t seed) {
  std::string s(size, '\0');
  std::uint32_t x = seed * 2654435761u + 1;
  for (std::size_t i = 0; i < size; i += 4096) {
    x = x * 1664525u + 1013904223u;
    s[i] = static_cast<char>(x >> 24);
  }
  if (size != 0) s[size - 1] = static_cast<char>(seed);
  return s;
}

TEST(Queue, AnItemLargerThanTheRingGoesThroughOutOfLine) {
  Queue<std::string> q(QueueOptions{.capacity = 4096});
  q.put("small before");
  q.put(pattern(1 << 20, 1));
  q.put("small after");
  EXPECT_EQ(q.qsize(), 3u);
  EXPECT_EQ(q.get(), "small before");
  EXPECT_EQ(q.get(), pattern(1 << 20, 1));
  EXPECT_EQ(q.get(), "small after");
}

TEST(Queue, A256MiBItemGoesThroughTheDefaultQueue) {
  Queue<std::string> q;
  std::string big = pattern(std::size_t{256} << 20, 7);
  auto child = fork_and_wait([&] {
    q.put(big);
    return 0;
  });
  ASSERT_EQ(child.code, 0);
  EXPECT_TRUE(q.get(10s) == big);
}

TEST(Queue, WhenTheRingIsFullItemsOverflowAndKeepFifoOrder) {
  Queue<std::string> q(QueueOptions{.capacity = 4096});
  // Fill the ring with small items, then go on: the rest goes to the overflow list.
  const int n = 300;
  for (int i = 0; i < n; ++i) q.put(std::to_string(i) + std::string(40, 'x'));
  EXPECT_EQ(q.qsize(), static_cast<std::size_t>(n));
  for (int i = 0; i < n / 2; ++i) ASSERT_EQ(q.get(), std::to_string(i) + std::string(40, 'x'));
  // While the overflow list drains, new items queue behind it.
  for (int i = n; i < n + 50; ++i) q.put(std::to_string(i) + std::string(40, 'x'));
  for (int i = n / 2; i < n + 50; ++i) ASSERT_EQ(q.get(), std::to_string(i) + std::string(40, 'x'));
  EXPECT_TRUE(q.empty());
}

TEST(Queue, AnOutOfLineItemOutlivesTheProducerThatPutIt) {
  Queue<std::string> q(QueueOptions{.capacity = 4096});
  auto child = fork_and_wait([&] {
    q.put(pattern(100000, 3));  // out of line, referenced in the ring
    for (int i = 0; i < 200; ++i) q.put(std::string(64, 'y'));  // fills the ring
    q.put(pattern(50000, 4));                                   // overflow list
    return 0;
  });
  ASSERT_EQ(child.code, 0);
  std::this_thread::sleep_for(200ms);  // the tracker has heard of the child's exit by now
  EXPECT_EQ(q.get(), pattern(100000, 3));
  for (int i = 0; i < 200; ++i) ASSERT_EQ(q.get(), std::string(64, 'y'));
  EXPECT_EQ(q.get(), pattern(50000, 4));
}

TEST(Queue, ItemsStillOutOfLineAreRemovedWithTheQueue) {
  {
    Queue<std::string> q(QueueOptions{.capacity = 4096});
    for (int i = 0; i < 5; ++i) q.put(pattern(100000, i));
    for (int i = 0; i < 200; ++i) q.put(std::string(64, 'z'));
    EXPECT_GT(detail::count_segments_of(::getpid()), 5u);
  }
  EXPECT_EQ(detail::count_segments_of(::getpid()), 0u);
}

TEST(Queue, ImmediateShutdownRemovesOutOfLineItems) {
  Queue<std::string> q(QueueOptions{.capacity = 4096});
  for (int i = 0; i < 3; ++i) q.put(pattern(100000, i));
  for (int i = 0; i < 200; ++i) q.put(std::string(64, 'z'));
  q.shutdown(true);
  EXPECT_EQ(detail::count_segments_of(::getpid()), 1u);  // the ring itself
}

TEST(ByteQueue, AnUnnamedQueueCarriesItemsFromAForkedChildWithNoSegmentInDevShm) {
  const std::size_t before = detail::count_segments_of(::getpid());
  auto q = detail::ByteQueue::create_unnamed(QueueOptions{});
  EXPECT_EQ(detail::count_segments_of(::getpid()), before);
  auto child = fork_and_wait([&] {
    q.put("from child", Deadline::never());
    return 0;
  });
  ASSERT_EQ(child.code, 0);
  std::string out;
  q.get(out, Deadline::now());
  EXPECT_EQ(out, "from child");
}

TEST(ByteQueue, AnUnnamedQueueRemovesItsOutOfLineItemsWithIt) {
  const std::size_t before = detail::count_segments_of(::getpid());
  {
    auto q = detail::ByteQueue::create_unnamed(QueueOptions{.capacity = 4096});
    for (int i = 0; i < 3; ++i) q.put(pattern(100000, i), Deadline::never());
    EXPECT_GT(detail::count_segments_of(::getpid()), before);
  }
  EXPECT_EQ(detail::count_segments_of(::getpid()), before);
}

TEST(ByteQueue, AnItemPutFromTwoPartsComesOutAsOne) {
  detail::ByteQueue q(QueueOptions{});
  q.put("head-", "body", Deadline::never());
  q.put("", "", Deadline::never());
  std::string out;
  q.get(out, Deadline::now());
  EXPECT_EQ(out, "head-body");
  q.get(out, Deadline::now());
  EXPECT_EQ(out, "");
}

TEST(ByteQueue, GetViewHandsTheItemToTheSink) {
  detail::ByteQueue q(QueueOptions{});
  q.put("first", Deadline::never());
  std::string seen;
  q.get_view(Deadline::now(), [&](std::string_view item) { seen = item; });
  EXPECT_EQ(seen, "first");
  EXPECT_EQ(q.qsize(), 0u);
}

TEST(ByteQueue, AThrowingSinkStillTakesTheItem) {
  detail::ByteQueue q(QueueOptions{});
  q.put("bad", Deadline::never());
  q.put("next", Deadline::never());
  EXPECT_THROW(q.get_view(Deadline::now(),
                          [](std::string_view) { throw std::runtime_error("cannot decode"); }),
               std::runtime_error);
  std::string out;
  q.get(out, Deadline::now());
  EXPECT_EQ(out, "next");
}

// What get_views hands its sink, in order.
struct Taken {
  std::vector<std::string> items;
  void operator()(std::string_view item) { items.emplace_back(item); }
};

TEST(ByteQueue, GetViewsTakesSeveralItemsInOrderUpToItsLimit) {
  detail::ByteQueue q(QueueOptions{});
  for (const char* item : {"a", "b", "c", "d", "e"}) q.put(item, Deadline::never());
  Taken first;
  EXPECT_EQ(q.get_views(Deadline::now(), first, 2, 100), 3u);
  EXPECT_EQ(first.items, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(q.qsize(), 2u);
  Taken rest;
  EXPECT_EQ(q.get_views(Deadline::now(), rest, 10, 100), 2u);
  EXPECT_EQ(rest.items, (std::vector<std::string>{"d", "e"}));
  EXPECT_EQ(q.qsize(), 0u);
  Taken none;
  EXPECT_THROW(q.get_views(Deadline::now(), none, 10, 100), Empty);
  EXPECT_TRUE(none.items.empty());
}

TEST(ByteQueue, GetViewsLeavesALargerItemToTheNextGet) {
  detail::ByteQueue q(QueueOptions{});
  const std::string large(200, 'x');
  for (const std::string& item : {std::string("a"), large, std::string("c")})
    q.put(item, Deadline::never());
  Taken first;
  EXPECT_EQ(q.get_views(Deadline::now(), first, 5, 100), 1u);
  EXPECT_EQ(first.items, (std::vector<std::string>{"a"}));
  // The first item of a get may be of any size; the small one after it comes along.
  Taken second;
  EXPECT_EQ(q.get_views(Deadline::now(), second, 5, 100), 2u);
  EXPECT_EQ(second.items, (std::vector<std::string>{large, "c"}));
}

TEST(ByteQueue, GetViewsLeavesAnItemStoredOutOfLineToTheNextGet) {
  detail::ByteQueue q(QueueOptions{.capacity = 4096});
  const std::string outside = pattern(100000, 7);  // larger than the ring: out of line
  q.put("a", Deadline::never());
  q.put(outside, Deadline::never());
  q.put("c", Deadline::never());
  Taken all;
  EXPECT_EQ(q.get_views(Deadline::now(), all, 5, std::size_t{1} << 20), 1u);
  while (all.items.size() < 3) (void)q.get_views(Deadline::now(), all, 5, std::size_t{1} << 20);
  EXPECT_EQ(all.items, (std::vector<std::string>{"a", outside, "c"}));
  EXPECT_EQ(q.qsize(), 0u);
}

TEST(ByteQueue, GetViewsKeepsItemsWholeAcrossTheEndOfTheRing) {
  detail::ByteQueue q(QueueOptions{.capacity = 4096});
  // Items of 700 bytes move the ring's head and tail around its end again and again, while a
  // consumer always has some left behind (an empty ring starts over at its beginning).
  q.put(pattern(700, 0), Deadline::never());
  int next_put = 1;
  int next_get = 0;
  for (int round = 0; round < 40; ++round) {
    for (int i = 0; i < 3; ++i) q.put(pattern(700, next_put++), Deadline::never());
    Taken taken;
    const std::size_t n = q.get_views(Deadline::now(), taken, 2, 4096);
    ASSERT_EQ(n, taken.items.size());
    ASSERT_GE(n, 1u);
    for (const std::string& item : taken.items) ASSERT_EQ(item, pattern(700, next_get++));
  }
  EXPECT_EQ(q.qsize(), static_cast<std::size_t>(next_put - next_get));
}

TEST(ByteQueue, GetViewsWithAThrowingSinkTakesTheItemsUpToTheOneThatFailed) {
  detail::ByteQueue q(QueueOptions{});
  for (const char* item : {"a", "bad", "c"}) q.put(item, Deadline::never());
  Taken before;
  EXPECT_THROW(q.get_views(
                   Deadline::now(),
                   [&](std::string_view item) {
                     if (item == "bad") throw std::runtime_error("cannot decode");
                     before(item);
                   },
                   5, 100),
               std::runtime_error);
  EXPECT_EQ(before.items, (std::vector<std::string>{"a"}));
  std::string out;
  q.get(out, Deadline::now());
  EXPECT_EQ(out, "c");
}

TEST(ByteQueue, GetViewsMakesRoomForAPutBlockedOnAFullQueue) {
  detail::ByteQueue q(QueueOptions{.maxsize = 3});
  for (const char* item : {"a", "b", "c"}) q.put(item, Deadline::never());
  bool put = false;
  std::thread putter([&] {
    try {
      q.put("d", Deadline::after(10s));
      put = true;
    } catch (const Full&) {  // the room made was not seen
    }
  });
  Taken taken;
  EXPECT_EQ(q.get_views(Deadline::now(), taken, 5, 100), 3u);
  putter.join();
  EXPECT_TRUE(put);
  std::string out;
  q.get(out, Deadline::after(10s));
  EXPECT_EQ(out, "d");
}

TEST(Queue, VectorsAndEmptyItemsRoundTrip) {
  Queue<std::vector<double>> vectors;
  vectors.put({1.5, -2.0, 3.25});
  vectors.put({});
  EXPECT_EQ(vectors.get_nowait(), (std::vector<double>{1.5, -2.0, 3.25}));
  EXPECT_TRUE(vectors.get_nowait().empty());
  Queue<std::string> strings;
  strings.put("");
  EXPECT_EQ(strings.get_nowait(), "");
}

TEST(Queue, WithNobodyGettingAnItemTheRingCouldHoldStillGoesThroughOutOfLine) {
  Queue<std::string> q(QueueOptions{.capacity = 4096});
  // The third does not fit beside the first two: put waits briefly for a get, then takes the
  // out-of-line way instead of blocking (the queue is not full by maxsize).
  for (int i = 0; i < 3; ++i) q.put(pattern(1500, i));
  EXPECT_EQ(q.qsize(), 3u);
  EXPECT_GT(detail::count_segments_of(::getpid()), 1u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(q.get_nowait(), pattern(1500, i));
}

TEST(Queue, ItemsNearHalfTheRingStreamInOrderAcrossProcesses) {
  // Items that wrap around the ring's end, and puts that wait for the consumer to make room.
  Queue<std::string> q(QueueOptions{.maxsize = 8, .capacity = 8192});
  constexpr int kItems = 300;
  auto size_of = [](int i) { return static_cast<std::size_t>(1000 + (i * 397) % 3000); };
  pid_t producer = fork_child([&] {
    for (int i = 0; i < kItems; ++i) q.put(pattern(size_of(i), i));
    return 0;
  });
  for (int i = 0; i < kItems; ++i) ASSERT_EQ(q.get(10s), pattern(size_of(i), i)) << "item " << i;
  EXPECT_EQ(wait_child(producer).code, 0);
}

TEST(Queue, ManyProducersAndConsumersAcrossProcessesLoseNothing) {
  Queue<std::uint64_t> q(QueueOptions{.maxsize = 16, .capacity = 4096});
  Queue<std::uint64_t> sums;
  constexpr int kProducers = 3, kConsumers = 3, kEach = 2000;
  std::vector<pid_t> pids;
  for (int p = 0; p < kProducers; ++p)
    pids.push_back(fork_child([&, p] {
      for (int i = 0; i < kEach; ++i) q.put(static_cast<std::uint64_t>(p * kEach + i + 1));
      return 0;
    }));
  for (int c = 0; c < kConsumers; ++c)
    pids.push_back(fork_child([&] {
      std::uint64_t sum = 0;
      for (;;) {
        std::uint64_t v = q.get(10s);
        if (v == 0) break;
        sum += v;
      }
      sums.put(sum);
      return 0;
    }));
  for (int p = 0; p < kProducers; ++p) EXPECT_EQ(wait_child(pids[p]).code, 0);
  for (int c = 0; c < kConsumers; ++c) q.put(0);
  std::uint64_t total = 0;
  for (int c = 0; c < kConsumers; ++c) total += sums.get(10s);
  for (int c = 0; c < kConsumers; ++c) EXPECT_EQ(wait_child(pids[kProducers + c]).code, 0);
  const std::uint64_t n = kProducers * kEach;
  EXPECT_EQ(total, n * (n + 1) / 2);
}

}  // namespace
}  // namespace mproc
