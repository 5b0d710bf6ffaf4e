#include "hub.h"

#include <algorithm>
#include <cstdlib>

#include "mproc/envelope.h"
#include "mproc/errors.h"
#include "mproc/log.h"

#include "messages.h"
#include "wire.h"

namespace mproc::dist {

namespace {
// How long the hub's thread sleeps while waiting threads poll for it (help), before it looks
// again: a waiter that got its answer leaves without waking it.
constexpr std::chrono::milliseconds kHelpedPause{1};
// A submitter wakes the hub's thread only when it would sleep longer than this.
constexpr std::chrono::microseconds kNoWakeWithin{200};

// Whether this thread is in a waiter's round (help), not the hub's thread's.
thread_local bool t_helping = false;

std::int64_t now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

Hub* the_hub = nullptr;  // never destroyed: pools in static storage may outlive exit's handlers

}  // namespace

void Hub::start() {
  if (the_hub != nullptr) return;
  // Leaked on purpose (see above); its thread is joined at exit.
  auto* hub = new Hub;
  hub->thread_ = std::thread([hub] { hub->run(); });
  the_hub = hub;
  std::atexit([] { the_hub->stop(); });
}

Hub* Hub::instance() noexcept { return the_hub; }

int Hub::wait_started() {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] { return started_ || !failed_.empty(); });
  if (!failed_.empty()) throw ProcessError(failed_);
  return size_;
}

int Hub::wait_ready(std::chrono::seconds limit) {
  std::unique_lock lock(mutex_);
  bool ready = changed_.wait_for(lock, limit, [&] {
    return !failed_.empty() || stopped_ || (started_ && ready_ == size_ - 1);
  });
  if (!failed_.empty()) throw ProcessError(failed_);
  if (stopped_) throw ProcessError("the MPI job is ending: no cluster pool can start");
  if (!ready) {
    std::string missing;
    for (int r = 1; r < size_; ++r)
      if (!agents_[static_cast<std::size_t>(r)].ready) missing += " " + std::to_string(r);
    throw ProcessError("MPI ranks" + missing + " did not report ready within " +
                       std::to_string(limit.count()) +
                       " s (does every rank run this program, calling mproc::init first?)");
  }
  int workers = 0;
  for (const Agent& a : agents_) workers += static_cast<int>(a.workers);
  if (workers == 0) throw ProcessError("no MPI rank could start a worker process");
  return workers;
}

std::uint64_t Hub::new_owner() {
  std::scoped_lock lock(mutex_);
  return next_owner_++;
}

std::uint64_t Hub::open_job(std::uint64_t owner, std::shared_ptr<detail::Job> job,
                            const detail::JobLimits* limits) {
  std::scoped_lock lock(mutex_);
  if (stopping_ || stopped_) throw ProcessError("the MPI job is ending: no more tasks");
  std::uint64_t id = next_job_++;
  JobEntry& entry = jobs_[id];
  entry.job = std::move(job);
  entry.owner = owner;
  if (limits) {
    entry.timeout = limits->timeout;
    entry.kill_grace = limits->kill_grace;
    entry.task = std::string(limits->task);
  }
  return id;
}

void Hub::submit(std::uint64_t job, std::uint32_t chunk, std::string_view message) {
  {
    std::scoped_lock lock(mutex_);
    auto it = jobs_.find(job);
    if (it == jobs_.end()) throw ValueError("Pool not running");
    JobEntry& entry = it->second;
    if (entry.outstanding.insert(chunk)) ++owner_chunks_[entry.owner];
    ++entry.submitted;
    pending_.push_back(Pending{job, chunk,
                               encode_run_chunk(RunChunk{job, chunk, entry.timeout,
                                                         entry.kill_grace, entry.task, message})});
    send_ready();
    woken_ = true;  // the hub's thread looks out for the answer
  }
  // Woken only from a long sleep: a wake-up costs the CPUs more than the round trip, and from a
  // short one the hub's thread comes back soon enough, unless the submitter's own wait for the
  // answer polls first (help).
  if (sleeps_long()) wake_.notify_one();
}

bool Hub::sleeps_long() const noexcept {
  const std::int64_t until = sleeping_until_.load(std::memory_order_acquire);
  return until != 0 && until - now_ns() > std::chrono::nanoseconds(kNoWakeWithin).count();
}

void Hub::seal(std::uint64_t job) noexcept {
  std::scoped_lock lock(mutex_);
  auto it = jobs_.find(job);
  if (it == jobs_.end()) return;
  it->second.sealed = true;
  if (it->second.outstanding.empty()) jobs_.erase(it);
}

void Hub::count_off(std::uint64_t owner, std::size_t chunks) {
  auto it = owner_chunks_.find(owner);
  if (it == owner_chunks_.end()) return;
  it->second -= std::min(it->second, chunks);
  if (it->second != 0) return;
  owner_chunks_.erase(it);
  changed_.notify_all();
}

void Hub::wake() noexcept {
  {
    std::scoped_lock lock(mutex_);
    woken_ = true;
  }
  wake_.notify_one();
}

bool Hub::cancel(std::uint64_t id, bool interrupt) {
  std::shared_ptr<detail::Job> job;
  std::vector<std::uint32_t> chunks;
  std::uint64_t owner = 0;
  bool ran = false;
  {
    std::scoped_lock lock(mutex_);
    auto it = jobs_.find(id);
    if (it == jobs_.end() || !it->second.sealed || it->second.outstanding.empty()) return false;
    JobEntry& entry = it->second;
    ran = !entry.running.empty() || entry.submitted > entry.outstanding.size();
    if (ran && !interrupt) return false;
    std::set<int> ranks;
    for (const auto& [chunk, rank] : entry.running) ranks.insert(rank);
    for (int rank : ranks) control_.emplace_back(rank, encode_kill_job(id));
    job = entry.job;
    chunks.assign(entry.outstanding.begin(), entry.outstanding.end());
    owner = entry.owner;
    jobs_.erase(it);  // chunks still pending are skipped when their turn comes
    send_ready();
    woken_ = true;
  }
  wake_.notify_one();
  job->mark_cancelled();
  auto error = std::make_exception_ptr(
      CancelledError(ran ? "the task was cancelled while it ran (its worker was stopped)"
                         : "the task was cancelled before it started"));
  for (std::uint32_t chunk : chunks) job->fail(chunk, error);
  delivered(owner, chunks.size());
  return true;
}

void Hub::drop_owner(std::uint64_t owner, const std::exception_ptr& running,
                     const std::exception_ptr& unstarted) {
  struct Dropped {
    std::shared_ptr<detail::Job> job;
    std::vector<std::uint32_t> chunks;
    bool started;
  };
  std::vector<Dropped> dropped;
  {
    std::scoped_lock lock(mutex_);
    for (auto it = jobs_.begin(); it != jobs_.end();) {
      auto next = std::next(it);
      JobEntry& entry = it->second;
      if (entry.owner == owner) {
        std::set<int> ranks;
        for (const auto& [chunk, rank] : entry.running) ranks.insert(rank);
        for (int rank : ranks) control_.emplace_back(rank, encode_kill_job(it->first));
        dropped.push_back(
            Dropped{entry.job,
                    {entry.outstanding.begin(), entry.outstanding.end()},
                    !entry.running.empty() || entry.submitted > entry.outstanding.size()});
        jobs_.erase(it);
      }
      it = next;
    }
    send_ready();
    woken_ = true;
  }
  wake_.notify_one();
  for (Dropped& d : dropped) {
    const bool cancelled = !d.started && unstarted;
    if (cancelled) d.job->mark_cancelled();
    for (std::uint32_t chunk : d.chunks) d.job->fail(chunk, cancelled ? unstarted : running);
    delivered(owner, d.chunks.size());
  }
}

void Hub::wait_owner_idle(std::uint64_t owner) {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] { return stopped_ || owner_chunks_.count(owner) == 0; });
}

void Hub::delivered(std::uint64_t owner, std::size_t chunks) {
  std::scoped_lock lock(mutex_);
  count_off(owner, chunks);
}

std::shared_ptr<detail::Job> Hub::answered(const Link::Message& message, std::uint64_t job,
                                           std::uint32_t chunk, std::uint64_t& owner) {
  const int rank = message.source;
  std::unique_lock lock(mutex_);
  if (t_helping) {
    // A job whose delivery runs the user's callbacks is left to the hub's thread: callbacks run
    // as the local pool runs them, on one thread of the pool's own, never inside a user's wait.
    auto it = jobs_.find(job);
    if (it != jobs_.end() && it->second.job->runs_callbacks()) {
      handed_over_.push_back(message);
      handed_over_pending_.store(true, std::memory_order_release);
      woken_ = true;
      lock.unlock();
      wake_.notify_one();
      return nullptr;
    }
  }
  if (rank > 0 && rank < size_) {
    Agent& agent = agents_[static_cast<std::size_t>(rank)];
    agent.credits.on_answer(now_ns(), agent.in_flight, agent.workers);
    if (agent.in_flight > 0) --agent.in_flight;
  }
  woken_ = true;  // a credit came back: the loop looks at pending chunks again
  auto it = jobs_.find(job);
  if (it == jobs_.end()) return nullptr;
  it->second.running.erase(chunk);
  if (it->second.outstanding.erase(chunk) == 0) return nullptr;
  owner = it->second.owner;
  std::shared_ptr<detail::Job> found = it->second.job;
  if (it->second.sealed && it->second.outstanding.empty()) jobs_.erase(it);
  return found;
}

void Hub::send_ready() {
  if (link_ == nullptr || stopping_) return;
  for (auto& [rank, bytes] : control_) send(rank, std::move(bytes));
  control_.clear();
  const std::int64_t now = pending_.empty() ? 0 : now_ns();
  while (!pending_.empty()) {
    // The agent with the most room takes the next chunk.
    int best = -1;
    std::uint32_t best_room = 0;
    for (int r = 1; r < size_; ++r) {
      const Agent& a = agents_[static_cast<std::size_t>(r)];
      if (!a.ready) continue;
      std::uint32_t limit = a.credits.limit(a.workers, now);
      std::uint32_t room = limit > a.in_flight ? limit - a.in_flight : 0;
      if (room > best_room) {
        best = r;
        best_room = room;
      }
    }
    if (best < 0) return;
    Pending p = std::move(pending_.front());
    pending_.pop_front();
    auto it = jobs_.find(p.job);
    if (it == jobs_.end() || it->second.outstanding.count(p.chunk) == 0) continue;  // dropped
    it->second.running[p.chunk] = best;
    Agent& agent = agents_[static_cast<std::size_t>(best)];
    agent.credits.on_send(now, agent.in_flight);
    ++agent.in_flight;
    send(best, std::move(p.message));
  }
}

void Hub::send(int rank, std::string bytes) noexcept {
  try {
    link_->send(rank, std::move(bytes));
  } catch (const std::exception& e) {
    get_logger()->error("mproc::dist: cannot send to rank {}: {}", rank, e.what());
  }
}

void Hub::on_message(const Link::Message& message) {
  if (message.bytes.empty()) return;
  const int rank = message.source;
  switch (message.bytes[0]) {
    case kHello: {
      Hello hello = decode_hello(message.bytes);
      {
        std::scoped_lock lock(mutex_);
        if (rank <= 0 || rank >= size_) return;
        Agent& agent = agents_[static_cast<std::size_t>(rank)];
        if (!agent.ready) ++ready_;
        agent.ready = true;
        agent.workers = hello.workers;
        agent.host = hello.host;
      }
      get_logger()->debug("mproc::dist: rank {} on {} serves with {} workers", rank, hello.host,
                          hello.workers);
      changed_.notify_all();
      return;
    }
    case detail::kResultMessage: {
      detail::WireReader reader(message.bytes);
      reader.tag();
      detail::ChunkResults results = detail::read_results(reader);
      std::uint64_t owner = 0;
      if (auto job = answered(message, results.job, results.chunk, owner)) {
        job->deliver(results.chunk, results.items);
        delivered(owner, 1);
      }
      return;
    }
    case detail::kPackedResults: {
      detail::WireReader reader(message.bytes);
      reader.tag();
      detail::PackedChunkResults packed = detail::read_packed_results(reader);
      if (packed.remote) throw SerializationError("an agent sent results by reference");
      std::uint64_t owner = 0;
      if (auto job = answered(message, packed.job, packed.chunk, owner)) {
        job->deliver_packed(packed.chunk, packed.results);
        delivered(owner, 1);
      }
      return;
    }
    case kChunkFailed: {
      ChunkFailed failed = decode_chunk_failed(message.bytes);
      std::uint64_t owner = 0;
      if (auto job = answered(message, failed.job, failed.chunk, owner)) {
        job->fail(failed.chunk, remote_exception(failed.error));
        delivered(owner, 1);
      }
      return;
    }
    default:
      get_logger()->error("mproc::dist: rank {} sent an unknown message", rank);
  }
}

void Hub::run() {
  std::optional<Link> link;
  try {
    link.emplace();
  } catch (const std::exception& e) {
    {
      std::scoped_lock lock(mutex_);
      failed_ = std::string("cannot start MPI: ") + e.what();
    }
    changed_.notify_all();
    return;
  }
  {
    std::scoped_lock lock(mutex_);
    size_ = link->size();
    agents_.resize(static_cast<std::size_t>(size_));
    started_ = true;
    link_ = &*link;
  }
  changed_.notify_all();

  Backoff backoff;
  for (;;) {
    if (helpers_.load(std::memory_order_acquire) > 0 &&
        !handed_over_pending_.load(std::memory_order_acquire)) {
      // A waiting thread polls: this one sleeps until the last helper leaves without its result
      // (it wakes this one), a helper hands over an answer, the end, or kHelpedPause (a helper
      // that got its answer leaves without a word). A submitter does not wake it: the helper
      // polls for the answer.
      std::unique_lock lock(mutex_);
      if (stopping_) break;
      wake_.wait_for(lock, kHelpedPause, [&] {
        return stopping_ || helpers_.load(std::memory_order_acquire) == 0 || !handed_over_.empty();
      });
      continue;
    }
    if (polling_.test_and_set(std::memory_order_acquire)) {
      std::this_thread::yield();  // a helper is in its round
      continue;
    }
    const Round r = round(*link);
    polling_.clear(std::memory_order_release);
    if (r.stop) break;
    backoff.after_round(r.worked, r.sending, /*due=*/r.in_flight,
                        [&](std::chrono::microseconds pause) {
                          std::unique_lock lock(mutex_);
                          sleep(lock, pause, [&] { return woken_; });
                        });
  }

  // From here on, this thread holds the polling for good: no helper uses the Link any more.
  while (polling_.test_and_set(std::memory_order_acquire)) std::this_thread::yield();
  take_handed_over();
  for (int r = 1; r < link->size(); ++r) link->send(r, std::string(1, kStop));
  link->flush();
  std::vector<std::pair<std::shared_ptr<detail::Job>, std::uint32_t>> left;
  {
    std::scoped_lock lock(mutex_);
    stopped_ = true;
    link_ = nullptr;
    for (auto& [id, entry] : jobs_)
      for (std::uint32_t chunk : entry.outstanding) left.emplace_back(entry.job, chunk);
    jobs_.clear();
    owner_chunks_.clear();
    pending_.clear();
  }
  changed_.notify_all();
  auto error = std::make_exception_ptr(
      ProcessError("the program on MPI rank 0 ended before this task finished"));
  for (auto& [job, chunk] : left) job->fail(chunk, error);
  link.reset();  // MPI_Finalize, which the agents meet
}

Hub::Round Hub::round(Link& link) {
  Round r;
  if (!t_helping && handed_over_pending_.load(std::memory_order_acquire)) {
    take_handed_over();
    r.worked = true;
  }
  while (link.poll(message_)) {
    r.worked = true;
    take(message_);
  }
  {
    std::scoped_lock lock(mutex_);
    // Whatever woke this thread (a chunk sent by its submitter, a credit back, a kill) is work:
    // an answer is due, so it polls for a while before it sleeps.
    r.worked = std::exchange(woken_, false) || r.worked;
    send_ready();
    r.stop = stopping_;
    for (const Agent& a : agents_) r.in_flight = r.in_flight || a.in_flight > 0;
    in_flight_.store(r.in_flight, std::memory_order_relaxed);
  }
  r.sending = link.progress();
  return r;
}

void Hub::take_handed_over() {
  std::deque<Link::Message> handed;
  {
    std::scoped_lock lock(mutex_);
    handed.swap(handed_over_);
    handed_over_pending_.store(false, std::memory_order_relaxed);
  }
  for (const Link::Message& message : handed) take(message);
}

template <class Awake>
void Hub::sleep(std::unique_lock<std::mutex>& lock, std::chrono::microseconds pause,
                Awake&& awake) {
  sleeping_until_.store(now_ns() + std::chrono::nanoseconds(pause).count(),
                        std::memory_order_release);
  wake_.wait_for(lock, pause, std::forward<Awake>(awake));
  sleeping_until_.store(0, std::memory_order_relaxed);
}

void Hub::take(const Link::Message& message) noexcept {
  try {
    on_message(message);
  } catch (const std::exception& e) {
    get_logger()->error("mproc::dist: a bad message from rank {}: {}", message.source, e.what());
  }
}

void Hub::begin_help() noexcept { helpers_.fetch_add(1, std::memory_order_acq_rel); }

void Hub::help() {
  if (polling_.test_and_set(std::memory_order_acquire)) return;
  Link* link = nullptr;
  {
    std::scoped_lock lock(mutex_);
    if (!stopping_) link = link_;
  }
  struct Release {
    std::atomic_flag& flag;
    ~Release() {
      t_helping = false;
      flag.clear(std::memory_order_release);
    }
  } release{polling_};
  t_helping = true;
  if (link != nullptr) (void)round(*link);
}

void Hub::end_help(bool answered) noexcept {
  // The last helper out: one that goes to sleep needs the hub's thread polling for it now. After
  // one that got its answer, the hub's thread comes back on its own (within kHelpedPause), and is
  // woken only if answers are still due and it sleeps longer than that.
  if (helpers_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  if (answered && (!in_flight_.load(std::memory_order_relaxed) || !sleeps_long())) return;
  {
    std::scoped_lock lock(mutex_);
    woken_ = true;
  }
  wake_.notify_one();
}

void Hub::stop() noexcept {
  {
    std::scoped_lock lock(mutex_);
    stopping_ = true;
    woken_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

}  // namespace mproc::dist
