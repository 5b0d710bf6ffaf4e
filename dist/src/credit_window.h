// How many chunks rank 0 lets a node agent hold unanswered. Enough to keep the node's workers busy
// while answers and new chunks cross the network, which for tiny tasks takes many chunks (three
// ranks on 2 CPUs: about 57k tasks/s with 4 per worker, 85k to 100k with 8 to 16); and little
// enough work that a slow node holds back the end of a map by little. So the window is counted
// in work, not chunks: at most kQueuedWork per worker, between kMinPerWorker and kMaxPerWorker
// chunks. A chunk's time is measured from the answers themselves: while every worker of the node
// has a chunk, answers come at the rate the workers finish them. Tasks of another kind may come
// next: a node that has been idle for longer than kQueuedWork starts again from the minimum, and
// so does a busy node that has not answered for that long, before the answer that ends the
// silence.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>

namespace mproc::dist {

class CreditWindow {
 public:
  static constexpr std::uint32_t kMinPerWorker = 4;
  static constexpr std::uint32_t kMaxPerWorker = 16;
  static constexpr std::chrono::nanoseconds kQueuedWork = std::chrono::milliseconds(1);

  // The most chunks a node of `workers` workers may hold at `now_ns` (steady clock):
  // kMinPerWorker each until a chunk's time is known.
  [[nodiscard]] std::uint32_t limit(std::uint32_t workers, std::int64_t now_ns) const noexcept {
    std::int64_t per_worker = kMinPerWorker;
    if (measured_) {
      // A busy node silent for that long runs longer chunks than measured; a shorter silence
      // says little (rank 0 may take a while to look).
      if (busy_ && now_ns - last_answer_ns_ > kQueuedWork.count()) return workers * kMinPerWorker;
      per_worker = chunk_ns_ > 0 ? kQueuedWork.count() / chunk_ns_ : kMaxPerWorker;
      per_worker = std::clamp<std::int64_t>(per_worker, kMinPerWorker, kMaxPerWorker);
    }
    return workers * static_cast<std::uint32_t>(per_worker);
  }

  // A chunk goes to a node that holds `in_flight` unanswered. One that has been idle for longer
  // than kQueuedWork starts again from the minimum. (Not one that was found with nothing in
  // flight at once: rank 0 takes answers in bursts, and the last of a burst may find it so.)
  void on_send(std::int64_t now_ns, std::uint32_t in_flight) noexcept {
    if (in_flight == 0 && now_ns - last_answer_ns_ > kQueuedWork.count()) measured_ = false;
  }

  // An answer arrived at `now_ns` (steady clock) while the node held `in_flight` chunks, this
  // one included.
  void on_answer(std::int64_t now_ns, std::uint32_t in_flight, std::uint32_t workers) noexcept {
    if (busy_) {
      // Answers arrive in bursts (rank 0 takes what has come in one round): the average of the
      // gaps is what counts, and an exponential average of them is that, over a few bursts.
      const std::int64_t sample = std::max<std::int64_t>(0, now_ns - last_answer_ns_) * workers;
      chunk_ns_ = measured_ ? chunk_ns_ + (sample - chunk_ns_) / kSmoothing : sample;
      measured_ = true;
    }
    last_answer_ns_ = now_ns;
    // A gap in which a worker may have waited for a chunk says nothing of a chunk's time.
    busy_ = workers > 0 && in_flight > workers;
  }

 private:
  static constexpr std::int64_t kSmoothing = 8;

  bool measured_ = false;
  bool busy_ = false;                // every worker had a chunk since the last answer
  std::int64_t last_answer_ns_ = 0;  // steady clock
  std::int64_t chunk_ns_ = 0;        // average time of one chunk on one worker
};

}  // namespace mproc::dist
