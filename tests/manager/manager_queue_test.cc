// Manager queues (QueueProxy, managed::Queue): Python's Queue/JoinableQueue from a SyncManager
// (issue 6; parity 7.4 test_queue, test_joinable_queue).
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "mproc/mproc.h"

#include "support.h"

namespace mproc {
namespace {

using namespace std::chrono_literals;

// The child's part of parity 7.4 test_queue: two items, full, not empty, then 5 and 6.
int check_two_items_then_get_5_and_6(const QueueProxy<int>& q) {
  if (q.qsize() != 2 || !q.full() || q.empty()) return 1;
  if (q.get(true, 10.0) != 5) return 2;
  if (q.get_nowait() != 6) return 3;
  return 0;
}

TEST(ManagerQueue, ChildSeesTwoItemsFullNotEmptyAndGets5Then6) {  // parity 7.4 test_queue
  Manager manager;
  QueueProxy<int> q = manager.Queue<int>(2);
  q.put(5);
  q.put(6);
  auto child = test::fork_and_wait([&] { return check_two_items_then_get_5_and_6(q); });
  ASSERT_FALSE(child.timed_out);
  EXPECT_EQ(child.code, 0);
  EXPECT_TRUE(q.empty());
  EXPECT_FALSE(q.full());
}

TEST(ManagerJoinableQueue, ChildSeesTwoItemsFullNotEmptyAndGets5Then6) {  // 7.4 joinable
  Manager manager;
  QueueProxy<int> q = manager.JoinableQueue<int>(2);
  q.put(5);
  q.put(6);
  auto child = test::fork_and_wait([&] {
    int rc = check_two_items_then_get_5_and_6(q);
    q.task_done();
    q.task_done();
    return rc;
  });
  ASSERT_FALSE(child.timed_out);
  EXPECT_EQ(child.code, 0);
  EXPECT_TRUE(q.empty());
  EXPECT_FALSE(q.full());
  EXPECT_TRUE(q.join(10s));
}

TEST(ManagerQueue, PutOnFullWithTimeoutThrowsFull) {
  Manager manager;
  auto q = manager.Queue<int>(1);
  q.put(1);
  EXPECT_THROW(q.put(2, 50ms), Full);
  EXPECT_THROW(q.put(2, true, 0.05), Full);
  EXPECT_EQ(q.qsize(), 1u);
}

TEST(ManagerQueue, PutNowaitOnFullThrowsFull) {
  Manager manager;
  auto q = manager.Queue<int>(1);
  q.put_nowait(1);
  EXPECT_THROW(q.put_nowait(2), Full);
  EXPECT_THROW(q.put(2, false, 5.0), Full);  // block=false ignores the timeout
}

TEST(ManagerQueue, GetOnEmptyWithTimeoutThrowsEmpty) {
  Manager manager;
  auto q = manager.Queue<int>();
  EXPECT_THROW((void)q.get(50ms), Empty);
  EXPECT_THROW((void)q.get(true, 0.05), Empty);
}

TEST(ManagerQueue, GetNowaitOnEmptyThrowsEmpty) {
  Manager manager;
  auto q = manager.Queue<int>();
  EXPECT_THROW((void)q.get_nowait(), Empty);
}

TEST(ManagerQueue, NegativeTimeoutIsValueError) {
  Manager manager;
  auto q = manager.Queue<int>();
  EXPECT_THROW((void)q.get(true, -1.0), ValueError);
  EXPECT_THROW(q.put(1, true, -1.0), ValueError);
}

TEST(ManagerQueue, UnboundedQueueIsNeverFull) {
  Manager manager;
  auto q = manager.Queue<int>();
  for (int i = 0; i < 100; ++i) q.put_nowait(i);
  EXPECT_FALSE(q.full());
  EXPECT_EQ(q.qsize(), 100u);
  EXPECT_EQ(q.maxsize(), 0u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(q.get_nowait(), i);
}

TEST(ManagerQueue, ItemsOfAnyEncodableTypeArriveIntact) {
  Manager manager;
  auto q = manager.Queue<std::optional<std::vector<std::string>>>();
  std::vector<std::string> item{"A", std::string(100000, 'x'), ""};
  q.put(item);
  q.put(std::nullopt);
  EXPECT_EQ(q.get(10s), item);
  EXPECT_EQ(q.get(10s), std::nullopt);
}

TEST(ManagerQueue, GetBlocksUntilAPutInAnotherProcess) {
  Manager manager;
  auto q = manager.Queue<std::string>();
  auto replies = manager.Queue<std::string>();
  pid_t pid = test::fork_child([&] {
    std::string got = q.get(20s);
    replies.put(got + "!");
    return 0;
  });
  q.put("hello");
  EXPECT_EQ(replies.get(20s), "hello!");
  auto child = test::wait_child(pid);
  ASSERT_FALSE(child.timed_out);
  EXPECT_EQ(child.code, 0);
}

TEST(ManagerQueue, BlockedPutResumesWhenAnotherProcessGets) {
  Manager manager;
  auto q = manager.Queue<int>(1);
  q.put(1);
  pid_t pid = test::fork_child([&] {
    q.put(2, 20s);  // blocks until the parent takes 1
    return 0;
  });
  EXPECT_EQ(q.get(20s), 1);
  EXPECT_EQ(q.get(20s), 2);
  auto child = test::wait_child(pid);
  ASSERT_FALSE(child.timed_out);
  EXPECT_EQ(child.code, 0);
}

TEST(ManagerJoinableQueue, TaskDoneTooOftenThrowsValueError) {
  Manager manager;
  auto q = manager.JoinableQueue<int>();
  q.put(1);
  (void)q.get_nowait();
  q.task_done();
  EXPECT_THROW(q.task_done(), ValueError);
}

TEST(ManagerJoinableQueue, JoinWaitsForTaskDone) {
  Manager manager;
  auto q = manager.JoinableQueue<int>();
  q.put(1);
  q.put(2);
  EXPECT_FALSE(q.join(20ms));  // two unfinished tasks
  pid_t pid = test::fork_child([&] {
    for (int i = 0; i < 2; ++i) {
      (void)q.get(20s);
      q.task_done();
    }
    return 0;
  });
  EXPECT_TRUE(q.join(20s));
  auto child = test::wait_child(pid);
  ASSERT_FALSE(child.timed_out);
  EXPECT_EQ(child.code, 0);
}

TEST(ManagerJoinableQueue, JoinOnAQueueWithNoTasksReturnsAtOnce) {
  Manager manager;
  auto q = manager.JoinableQueue<int>();
  q.join();
  EXPECT_TRUE(q.join(0s));
}

TEST(ManagerQueue, ShutdownMakesPutThrowAndGetThrowOnceEmpty) {
  Manager manager;
  auto q = manager.Queue<int>();
  q.put(1);
  q.shutdown();
  EXPECT_TRUE(q.is_shutdown());
  EXPECT_THROW(q.put(2), ShutDown);
  EXPECT_EQ(q.get(10s), 1);
  EXPECT_THROW((void)q.get(10s), ShutDown);
}

TEST(ManagerQueue, ImmediateShutdownDropsItemsAndEndsJoin) {
  Manager manager;
  auto q = manager.JoinableQueue<int>();
  q.put(1);
  q.put(2);
  q.shutdown(/*immediate=*/true);
  EXPECT_EQ(q.qsize(), 0u);
  EXPECT_TRUE(q.join(10s));
}

}  // namespace
}  // namespace mproc
