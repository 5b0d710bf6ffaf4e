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
  wake_.notify_one();
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

std::shared_ptr<detail::Job> Hub::answered(int rank, std::uint64_t job, std::uint32_t chunk,
                                           std::uint64_t& owner) {
  std::scoped_lock lock(mutex_);
  if (rank > 0 && rank < size_) {
    Agent& agent = agents_[static_cast<std::size_t>(rank)];
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
  while (!pending_.empty()) {
    // The agent with the most room takes the next chunk.
    int best = -1;
    std::uint32_t best_room = 0;
    for (int r = 1; r < size_; ++r) {
      const Agent& a = agents_[static_cast<std::size_t>(r)];
      if (!a.ready) continue;
      std::uint32_t limit = a.workers * kCreditsPerWorker;
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
    ++agents_[static_cast<std::size_t>(best)].in_flight;
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
      if (auto job = answered(rank, results.job, results.chunk, owner)) {
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
      if (auto job = answered(rank, packed.job, packed.chunk, owner)) {
        job->deliver_packed(packed.chunk, packed.results);
        delivered(owner, 1);
      }
      return;
    }
    case kChunkFailed: {
      ChunkFailed failed = decode_chunk_failed(message.bytes);
      std::uint64_t owner = 0;
      if (auto job = answered(rank, failed.job, failed.chunk, owner)) {
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
  Link::Message message;
  for (;;) {
    bool worked = false;
    while (link->poll(message)) {
      worked = true;
      try {
        on_message(message);
      } catch (const std::exception& e) {
        get_logger()->error("mproc::dist: a bad message from rank {}: {}", message.source,
                            e.what());
      }
    }
    bool stop = false;
    bool in_flight = false;
    {
      std::scoped_lock lock(mutex_);
      // Whatever woke this thread (a chunk sent by its submitter, a credit back, a kill) is work:
      // an answer is due, so it polls for a while before it sleeps.
      worked = std::exchange(woken_, false) || worked;
      send_ready();
      stop = stopping_;
      for (const Agent& a : agents_) in_flight = in_flight || a.in_flight > 0;
    }
    const bool sending = link->progress();
    if (stop) break;
    backoff.after_round(worked, sending, /*due=*/in_flight, [&](std::chrono::microseconds pause) {
      std::unique_lock lock(mutex_);
      wake_.wait_for(lock, pause, [&] { return woken_; });
    });
  }

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
