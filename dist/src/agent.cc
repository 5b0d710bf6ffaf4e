#include "agent.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "mproc/deadline.h"
#include "mproc/detail/call_codec.h"
#include "mproc/envelope.h"
#include "mproc/errors.h"
#include "mproc/log.h"
#include "mproc/pool.h"
#include "mproc/process.h"

#include "link.h"
#include "messages.h"
#include "wire.h"

namespace mproc::dist {
namespace {

// Where the answers for rank 0 go, sent at once; and which local jobs run which of rank 0's jobs
// (for 'K'). Only the agent's one thread touches it (it polls MPI and takes the local pool's
// results, which is where answers come from), so it takes no lock.
class Outbox {
 public:
  explicit Outbox(Link& link) : link_(link) {}

  // ValueError when the message is too large for MPI.
  void post(std::string message) {
    if (closed_) return;  // rank 0's program has ended: nobody waits for it
    link_.send(0, std::move(message));
  }
  // No more answers: rank 0 has stopped listening.
  void close() { closed_ = true; }
  void remember(std::uint64_t job, std::uint64_t local) { local_jobs_[job].push_back(local); }
  void forget(std::uint64_t job, std::uint64_t local) {
    auto it = local_jobs_.find(job);
    if (it == local_jobs_.end()) return;
    std::erase(it->second, local);
    if (it->second.empty()) local_jobs_.erase(it);
  }
  std::vector<std::uint64_t> locals_of(std::uint64_t job) {
    auto it = local_jobs_.find(job);
    return it == local_jobs_.end() ? std::vector<std::uint64_t>{} : it->second;
  }

 private:
  Link& link_;
  bool closed_ = false;
  std::unordered_map<std::uint64_t, std::vector<std::uint64_t>> local_jobs_;
};

// "worker process 812 was killed by signal 9 (SIGKILL) ..." becomes
// "worker process 812 on rank 2 (host node7) was killed by signal 9 (SIGKILL) ...".
std::exception_ptr on_this_rank(const std::exception_ptr& error, const std::string& where) {
  try {
    std::rethrow_exception(error);
  } catch (const WorkerLostError& lost) {
    std::string text = lost.what();
    const std::string prefix = "worker process ";
    std::size_t pid_end = text.rfind(prefix, 0) == 0 ? text.find(' ', prefix.size()) : text.npos;
    if (pid_end != text.npos) {
      text.insert(pid_end, " on " + where);
    } else {
      text += " (on " + where + ")";
    }
    return std::make_exception_ptr(WorkerLostError(text));
  } catch (...) {
    return error;
  }
}

// One chunk of rank 0's, run as a job of this node's pool: its results go back to rank 0 as they
// came, under rank 0's job number.
class ForwardJob : public detail::Job {
 public:
  ForwardJob(std::shared_ptr<Outbox> outbox, std::uint64_t job, std::uint32_t chunk,
             std::string where)
      : outbox_(std::move(outbox)), job_(job), chunk_(chunk), where_(std::move(where)) {}

  void attach(std::weak_ptr<detail::JobControl> /*control*/, std::uint64_t id) override {
    local_.store(id);
  }

  void deliver(std::uint32_t /*chunk*/, std::span<const detail::ItemResult> items) override {
    std::string out;
    detail::begin_results(out, job_, chunk_, static_cast<std::uint32_t>(items.size()));
    for (const detail::ItemResult& item : items) detail::add_result(out, item.status, item.payload);
    answer(std::move(out));
  }

  void deliver_packed(std::uint32_t /*chunk*/, const detail::PackedResults& results) override {
    std::string out;
    std::size_t at = detail::begin_packed_results(out, job_, chunk_, results.count, results.size);
    std::size_t bytes = std::size_t{results.count} * results.size;
    if (results.values.size() != bytes) {
      fail(chunk_, std::make_exception_ptr(
                       SerializationError("a packed result of the wrong size on " + where_)));
      return;
    }
    std::memcpy(out.data() + at, results.values.data(), bytes);
    std::vector<std::pair<std::uint32_t, std::string>> errors;
    errors.reserve(results.errors.size());
    for (const auto& [index, payload] : results.errors) errors.emplace_back(index, payload);
    detail::end_packed_results(out, errors);
    answer(std::move(out));
  }

  void fail(std::uint32_t /*chunk*/, std::exception_ptr error) override {
    std::string payload;
    try {
      payload = capture_exception(on_this_rank(error, where_));
    } catch (...) {
      // Only std::bad_alloc: an empty payload is rethrown as that on rank 0.
    }
    answer(encode_chunk_failed(job_, chunk_, payload));
  }

 private:
  void answer(std::string message) {
    if (answered_.exchange(true)) return;  // exactly one answer per chunk
    outbox_->forget(job_, local_.load());
    try {
      outbox_->post(std::move(message));
    } catch (const std::exception&) {
      // Results too large for one MPI message: the chunk fails instead.
      try {
        outbox_->post(encode_chunk_failed(
            job_, chunk_, capture_exception(on_this_rank(std::current_exception(), where_))));
      } catch (const std::exception& again) {
        get_logger()->error("mproc::dist {}: cannot answer a chunk: {}", where_, again.what());
      }
    }
  }

  std::shared_ptr<Outbox> outbox_;
  std::uint64_t job_;
  std::uint32_t chunk_;
  std::string where_;
  std::atomic<std::uint64_t> local_{0};
  std::atomic<bool> answered_{false};
};

std::string host_name() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0) return "unknown";
  return name;
}

int local_workers() {
  if (const char* text = std::getenv("MPROC_DIST_WORKERS")) {
    int n = std::atoi(text);
    if (n > 0) return n;
  }
  return cpu_count();
}

class Agent {
 public:
  Agent(detail::DrivenEngine pool, Link& link)
      : engine_(std::move(pool.engine)),
        collect_(std::move(pool.collect)),
        link_(link),
        where_("rank " + std::to_string(link.rank()) + " (host " + host_name() + ")") {}

  // One thread polls MPI and takes the local pool's results (the pool has no collector thread
  // of its own): with 2 CPUs, every thread spinning on a round trip's path takes a CPU from
  // another on it.
  void serve() {
    link_.send(0, encode_hello(Hello{static_cast<std::uint32_t>(engine_ ? engine_->processes() : 0),
                                     host_name()}));
    Backoff backoff;
    Link::Message message;
    bool collected_asleep = false;
    for (;;) {
      bool worked = std::exchange(collected_asleep, false);
      while (link_.poll(message)) {
        worked = true;
        if (!message.bytes.empty() && message.bytes[0] == kStop) {
          outbox_->close();
          return;
        }
        try {
          on_message(message.bytes);
        } catch (const std::exception& e) {
          get_logger()->error("mproc::dist {}: a bad message from rank 0: {}", where_, e.what());
        }
      }
      worked = collect(Deadline::now()) || worked;
      const bool sending = link_.progress();
      // The sleep is a wait for the workers' results, which wake it; rank 0's messages are seen
      // after it.
      backoff.after_round(worked, sending, /*due=*/false, [&](std::chrono::microseconds pause) {
        collected_asleep = collect(Deadline::after(pause));
      });
    }
  }

 private:
  void on_message(std::string_view bytes) {
    if (bytes.empty()) return;
    if (bytes[0] == kKillJob) {
      for (std::uint64_t local : outbox_->locals_of(decode_kill_job(bytes)))
        engine_->cancel_job(local, /*interrupt=*/true);
      return;
    }
    RunChunk run = decode_run_chunk(bytes);
    auto job = std::make_shared<ForwardJob>(outbox_, run.job, run.chunk, where_);
    try {
      if (!engine_) throw ProcessError("no worker process could be started on " + where_);
      std::uint64_t local =
          run.timeout || run.kill_grace.count() != 0
              ? engine_->open_job(job, detail::JobLimits{run.timeout, run.kill_grace, run.task})
              : engine_->open_job(job);
      outbox_->remember(run.job, local);
      // The chunk carries its job's number: this pool's, from now on.
      std::string message(run.message);
      detail::patch_u64(message, 1, local);
      engine_->submit_chunk(local, run.chunk, message);
      engine_->seal_job(local);
    } catch (...) {
      job->fail(run.chunk, std::current_exception());
    }
  }

  // Whether it handled any of the local pool's messages (results, whose answers it sent).
  bool collect(const Deadline& until) {
    if (!engine_) {
      if (!until.expired()) std::this_thread::sleep_until(until.when());
      return false;
    }
    try {
      return collect_(until) > 0;
    } catch (const std::exception& e) {
      get_logger()->critical("mproc::dist {}: the local pool's result queue failed: {}", where_,
                             e.what());
      std::abort();  // its workers' results are lost: end the MPI job, as a dead rank does
    }
  }

  std::shared_ptr<detail::Engine> engine_;
  std::function<std::size_t(const Deadline&)> collect_;
  Link& link_;
  std::string where_;
  std::shared_ptr<Outbox> outbox_ = std::make_shared<Outbox>(link_);
};

}  // namespace

void run_agent() {
  // The workers first: their zygote is forked from this process before MPI_Init.
  detail::DrivenEngine pool;
  try {
    pool = detail::make_driven_engine(PoolOptions{.processes = local_workers()});
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mproc::dist: cannot start this node's workers: %s\n", e.what());
  }
  std::shared_ptr<detail::Engine> engine = pool.engine;
  {
    Link link;
    Agent agent(std::move(pool), link);
    agent.serve();
    if (engine) {
      // Rank 0's program has ended: nothing it waits for runs here any more.
      engine->terminate();
      engine->join();
    }
    link.flush();
  }  // MPI_Finalize
  engine.reset();
  std::fflush(nullptr);
  std::exit(0);
}

}  // namespace mproc::dist
