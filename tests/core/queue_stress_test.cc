// Many producers and consumers, more than a million small messages: every message arrives
// exactly once (checksums on both sides), and each consumer sees each producer's messages in
// the order they were put.
#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "mproc/queue.h"

#include "support.h"

namespace mproc {
namespace {

using namespace std::chrono_literals;
using test::fork_child;
using test::wait_child;

struct Message {
  std::uint32_t producer;
  std::uint32_t seq;
  std::uint64_t value;
};

constexpr std::uint32_t kStop = 0xffffffff;

std::uint64_t value_of(std::uint32_t producer, std::uint32_t seq) {
  std::uint64_t x = (std::uint64_t{producer} << 32 | seq) * 0x9e3779b97f4a7c15ull;
  return x ^ (x >> 29);
}

struct Tally {
  std::uint64_t count = 0;
  std::uint64_t sum = 0;
  std::uint64_t xor_all = 0;
  std::uint32_t out_of_order = 0;
};

void stress(int producers, int consumers, std::uint32_t per_producer, const QueueOptions& options) {
  Queue<Message> q(options);
  Queue<Tally> tallies;
  std::vector<pid_t> producer_pids, consumer_pids;
  for (int c = 0; c < consumers; ++c) {
    consumer_pids.push_back(fork_child([&] {
      Tally t;
      std::vector<std::int64_t> last(static_cast<std::size_t>(producers), -1);
      for (;;) {
        Message m = q.get(60s);
        if (m.producer == kStop) break;
        if (m.value != value_of(m.producer, m.seq)) return 2;
        auto& l = last[m.producer];
        if (static_cast<std::int64_t>(m.seq) <= l) ++t.out_of_order;
        l = m.seq;
        ++t.count;
        t.sum += m.value;
        t.xor_all ^= m.value;
      }
      tallies.put(t);
      return 0;
    }));
  }
  for (int p = 0; p < producers; ++p) {
    producer_pids.push_back(fork_child([&, p] {
      for (std::uint32_t seq = 0; seq < per_producer; ++seq) {
        auto id = static_cast<std::uint32_t>(p);
        q.put(Message{id, seq, value_of(id, seq)});
      }
      return 0;
    }));
  }
  for (pid_t pid : producer_pids) EXPECT_EQ(wait_child(pid, 100s).code, 0);
  for (int c = 0; c < consumers; ++c) q.put(Message{kStop, 0, 0});
  Tally total;
  for (int c = 0; c < consumers; ++c) {
    Tally t = tallies.get(60s);
    total.count += t.count;
    total.sum += t.sum;
    total.xor_all ^= t.xor_all;
    total.out_of_order += t.out_of_order;
  }
  for (pid_t pid : consumer_pids) EXPECT_EQ(wait_child(pid, 60s).code, 0);
  Tally expected;
  for (int p = 0; p < producers; ++p) {
    for (std::uint32_t seq = 0; seq < per_producer; ++seq) {
      std::uint64_t v = value_of(static_cast<std::uint32_t>(p), seq);
      ++expected.count;
      expected.sum += v;
      expected.xor_all ^= v;
    }
  }
  EXPECT_EQ(total.count, expected.count);
  EXPECT_EQ(total.sum, expected.sum);
  EXPECT_EQ(total.xor_all, expected.xor_all);
  EXPECT_EQ(total.out_of_order, 0u);
  EXPECT_EQ(q.qsize(), 0u);
}

TEST(QueueStress, FourProducersFourConsumersOneAndAHalfMillionMessagesUnbounded) {
  stress(4, 4, 375000, {});
}

TEST(QueueStress, ThreeProducersThreeConsumersHalfAMillionMessagesBounded) {
  stress(3, 3, 170000, {.maxsize = 64});
}

TEST(QueueStress, TwoProducersTwoConsumersThroughOverflowChunks) {
  stress(2, 2, 100000, {.capacity = 4096});
}

}  // namespace
}  // namespace mproc
