#include "engine.h"

#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <cstring>

#include "mproc/errors.h"
#include "mproc/log.h"
#include "mproc/pool.h"

#include "futex.h"
#include "os_error.h"
#include "wire.h"

namespace mproc::detail {
namespace {

// Task messages are small and many: a ring of a few MiB holds thousands of chunks in flight.
QueueOptions queue_options() {
  return QueueOptions{.maxsize = 0, .capacity = std::size_t{4} << 20};
}

std::string describe_death(pid_t pid, int wait_status) {
  std::string text = "worker process " + std::to_string(pid);
  if (WIFSIGNALED(wait_status)) {
    int sig = WTERMSIG(wait_status);
    const char* name = ::sigabbrev_np(sig);
    text += " was killed by signal " + std::to_string(sig) +
            (name ? std::string(" (SIG") + name + ")" : "");
  } else if (WIFEXITED(wait_status)) {
    text += " exited with code " + std::to_string(WEXITSTATUS(wait_status));
  } else {
    text += " ended";
  }
  return text + " while running this task";
}

}  // namespace

PoolEngine::PoolEngine(PoolConfig config)
    : config_(std::move(config)),
      tasks_(queue_options()),
      results_(queue_options()),
      slots_(SharedSegment::create(
          sizeof(Doorbells) + sizeof(WorkerSlot) * static_cast<std::size_t>(config_.processes))),
      creator_(::getpid()) {
  new (slots_.data()) Doorbells;
  for (int i = 0; i < config_.processes; ++i) new (&slot(static_cast<std::uint32_t>(i))) WorkerSlot;
  // The zygote first, while this thread may still be the only one; then the collector; then
  // the workers, so that a constructor that fails (no thread to be had) never started any.
  start_zygote();
  live_workers_ = config_.processes;
  try {
    collector_ = std::thread([this] { collect(); });
  } catch (...) {
    // No half-built pool stays behind: the zygote leaves at the end of its command socket, and
    // is reaped here.
    zygote_commands_.reset();
    retry_on_eintr([&] { return ::waitpid(zygote_, nullptr, 0); });
    throw;
  }
  for (int i = 0; i < config_.processes; ++i) send_to_zygote('S', static_cast<std::uint32_t>(i));
}

PoolEngine::~PoolEngine() {
  if (::getpid() != creator_) return;  // a forked copy (zygote, worker): nothing is ours
  try {
    terminate();
    join();
  } catch (const std::exception& e) {
    report_error(std::string("cannot shut the pool down: ") + e.what());
  }
}

WorkerSlot& PoolEngine::slot(std::uint32_t index) const {
  return reinterpret_cast<WorkerSlot*>(static_cast<char*>(slots_.data()) +
                                       sizeof(Doorbells))[index];
}

Doorbells& PoolEngine::doorbells() const { return *static_cast<Doorbells*>(slots_.data()); }

void PoolEngine::post_task(std::string_view message) {
  Doorbells& d = doorbells();
  tasks_.put(message, Deadline::never());  // unbounded: never blocks
  d.tasks_posted.fetch_add(1, std::memory_order_seq_cst);
  // No worker spins (the holder of the role runs a chunk, or they all sleep): wake one.
  std::uint32_t role = d.role.load(std::memory_order_seq_cst);
  if ((role == Doorbells::kRoleBusy || role == Doorbells::kRoleIdle) &&
      d.role_sleepers.load(std::memory_order_seq_cst) != 0)
    ring_role(false);
}

void PoolEngine::ring_role(bool all) noexcept {
  Doorbells& d = doorbells();
  d.role_seq.fetch_add(1, std::memory_order_seq_cst);
  if (d.role_sleepers.load(std::memory_order_seq_cst) != 0)
    futex_wake(d.role_seq, all ? INT_MAX : 1);
}

void PoolEngine::post_result(std::string_view message) {
  results_.put(message, Deadline::never());
  doorbells().results_posted.fetch_add(1, std::memory_order_release);
}

void PoolEngine::start_zygote() {
  // A socket rather than a pipe: a command sent after the zygote left (terminate, then join)
  // must fail quietly (MSG_NOSIGNAL), not raise SIGPIPE in the user's process.
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0)
    throw_errno("create the pool's command socket");
  UniqueFd read_end(fds[0]), write_end(fds[1]);
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) throw_errno("fork the pool's zygote process");
  if (pid == 0) {
    write_end.reset();
    zygote_main(read_end.release());
  }
  zygote_ = pid;
  zygote_commands_ = std::move(write_end);
  get_logger()->debug("pool zygote started: pid {}", pid);
}

void PoolEngine::send_to_zygote(char command, std::uint32_t slot_index) noexcept {
  char message[5] = {command};
  std::memcpy(message + 1, &slot_index, 4);
  // One datagram per command: atomic even with several threads sending.
  ssize_t n = retry_on_eintr(
      [&] { return ::send(zygote_commands_.get(), message, sizeof message, MSG_NOSIGNAL); });
  if (n != static_cast<ssize_t>(sizeof message))
    report_error("cannot send a command to the pool's zygote process");
}

void PoolEngine::check_running() const {
  std::scoped_lock lock(mutex_);
  if (state_ != State::kRun) throw ValueError("Pool not running");
  if (!broken_.empty()) throw ProcessError(broken_);
}

std::uint64_t PoolEngine::open_job(std::shared_ptr<Job> job) {
  std::scoped_lock lock(mutex_);
  if (state_ != State::kRun) throw ValueError("Pool not running");
  if (!broken_.empty()) throw ProcessError(broken_);
  std::uint64_t id = next_job_++;
  jobs_.emplace(id, JobEntry{std::move(job), {}, false});
  return id;
}

void PoolEngine::submit_chunk(std::uint64_t job, std::uint32_t chunk, std::string_view message) {
  {
    std::scoped_lock lock(mutex_);
    auto it = jobs_.find(job);
    if (it == jobs_.end()) throw ValueError("Pool not running");  // terminated meanwhile
    it->second.outstanding.insert(chunk);
  }
  try {
    post_task(message);
  } catch (...) {
    if (auto lost = claim_chunk(job, chunk)) lost->fail(chunk, std::current_exception());
  }
}

void PoolEngine::seal_job(std::uint64_t job) noexcept {
  std::scoped_lock lock(mutex_);
  auto it = jobs_.find(job);
  if (it == jobs_.end()) return;
  it->second.sealed = true;
  if (it->second.outstanding.empty()) jobs_.erase(it);
}

std::shared_ptr<Job> PoolEngine::claim_chunk(std::uint64_t job, std::uint32_t chunk) {
  std::scoped_lock lock(mutex_);
  auto it = jobs_.find(job);
  if (it == jobs_.end() || it->second.outstanding.erase(chunk) == 0) return nullptr;
  std::shared_ptr<Job> found = it->second.job;
  if (it->second.sealed && it->second.outstanding.empty()) jobs_.erase(it);
  return found;
}

void PoolEngine::fail_everything(const std::exception_ptr& error) {
  std::vector<std::pair<std::shared_ptr<Job>, std::uint32_t>> failed;
  {
    std::scoped_lock lock(mutex_);
    for (auto& [id, entry] : jobs_)
      for (std::uint32_t chunk : entry.outstanding) failed.emplace_back(entry.job, chunk);
    for (auto& [id, entry] : jobs_) entry.outstanding.clear();
    std::erase_if(jobs_, [](const auto& item) { return item.second.sealed; });
  }
  for (auto& [job, chunk] : failed) job->fail(chunk, error);
}

// ---- the collector thread ----

void PoolEngine::collect() {
  std::string message;
  // Chunk results can be large: ask for huge pages for them (see memory.cc).
  message.reserve(std::size_t{16} << 20);
  advise_huge_pages(message.data(), message.capacity());
  LargeBytes remote_results;
  // Messages taken so far: while the doorbell shows no more, this thread spins briefly before
  // it sleeps in the queue (a wake-up costs more than a whole round trip).
  std::uint64_t taken = 0;
  auto pending = [&] {
    return static_cast<std::int64_t>(doorbells().results_posted.load(std::memory_order_acquire) -
                                     taken) > 0;
  };
  for (;;) {
    try {
      (void)spin_for(pending, kSpinBudget);
      results_.get(message, Deadline::never());
      ++taken;
    } catch (const std::exception& e) {
      report_error(std::string("the pool's result queue failed: ") + e.what());
      return;
    }
    if (message.empty()) continue;
    try {
      WireReader reader(message);
      switch (reader.tag()) {
        case kResultMessage:
          on_results(message);
          break;
        case kNeedInline: {
          remote_args_.store(false, std::memory_order_relaxed);
          WireReader whole(message);  // read_packed_chunk reads the tag itself
          PackedChunk chunk = read_packed_chunk(whole);
          on_need_inline(chunk);
          break;
        }
        case kPackedResults:
          on_packed_results(reader, remote_results);
          break;
        case kWorkerStarted: {
          std::uint32_t index = reader.u32();
          pid_t pid = reader.i32();
          get_logger()->debug("pool worker {} started in slot {}", pid, index);
          break;
        }
        case kWorkerDied: {
          std::uint32_t index = reader.u32();
          pid_t pid = reader.i32();
          if (on_worker_died(index, pid, reader.i32())) {
            // The pool is closed and its last worker has left: nothing more can come. Ending
            // here, and letting the zygote go, saves join() two round trips.
            send_to_zygote('Q', 0);
            return;
          }
          break;
        }
        case kInitializerFailed: {
          reader.u32();
          reader.i32();
          reader.i32();
          on_initializer_failed(message.substr(13));
          break;
        }
        case kStopCollector:
          return;
        default:
          report_error("the pool's collector got an unknown message");
      }
    } catch (const std::exception& e) {
      report_error(std::string("the pool's collector got a bad message: ") + e.what());
    }
  }
}

// A worker could not read a chunk's arguments from this process: send them inline. The job,
// held here, keeps them alive; a job gone meanwhile (terminated) needs nothing.
void PoolEngine::on_need_inline(const PackedChunk& chunk) {
  std::shared_ptr<Job> job;
  {
    std::scoped_lock lock(mutex_);
    auto it = jobs_.find(chunk.job);
    if (it == jobs_.end() || it->second.outstanding.count(chunk.chunk) == 0) return;
    job = it->second.job;
  }
  get_logger()->debug("pool workers cannot read this process's memory: arguments go inline");
  ChunkWriter writer;
  try {
    post_task(writer.packed(chunk.job, chunk.chunk, chunk.name,
                            reinterpret_cast<const void*>(chunk.address), chunk.count,
                            chunk.arg_size));
  } catch (...) {
    if (auto lost = claim_chunk(chunk.job, chunk.chunk))
      lost->fail(chunk.chunk, std::current_exception());
  }
}

void PoolEngine::on_packed_results(WireReader& reader, LargeBytes& buffer) {
  PackedChunkResults packed = read_packed_results(reader);
  std::shared_ptr<Job> job = claim_chunk(packed.job, packed.chunk);
  if (packed.remote) {
    const RemoteResults& where = packed.where;
    std::size_t bytes = std::size_t{packed.results.count} * packed.results.size;
    bool read = false;
    if (job) {
      if (buffer.size() < bytes) buffer.resize(bytes);
      read = read_remote(where.pid, where.address, buffer.data(), bytes);
    }
    // Only for the worker that sent it: a replacement in the same slot numbers its own arrays.
    if (where.slot < static_cast<std::uint32_t>(config_.processes)) {
      WorkerSlot& s = slot(where.slot);
      if (s.pid.load(std::memory_order_acquire) == where.pid)
        s.results_read.store(where.seq, std::memory_order_release);
    }
    if (!job) return;
    if (!read) {
      job->fail(packed.chunk, std::make_exception_ptr(
                                  WorkerLostError("worker process " + std::to_string(where.pid) +
                                                  " ended before its results were read")));
      return;
    }
    packed.results.values = std::string_view(buffer.data(), bytes);
  }
  if (job) job->deliver_packed(packed.chunk, packed.results);
}

void PoolEngine::on_results(std::string_view message) {
  WireReader reader(message);
  reader.tag();
  ChunkResults results = read_results(reader);
  if (auto job = claim_chunk(results.job, results.chunk))
    job->deliver(results.chunk, results.items);
}

bool PoolEngine::on_worker_died(std::uint32_t index, pid_t pid, int wait_status) {
  if (pid == 0) {  // the zygote could not fork it (wait_status holds the errno)
    return on_worker_not_started(wait_status);
  }
  WorkerSlot& s = slot(index);
  auto state = s.state.load(std::memory_order_acquire);
  if (state == WorkerSlot::kBusy) {
    std::uint64_t job = s.job.load(std::memory_order_acquire);
    std::uint32_t chunk = s.chunk.load(std::memory_order_acquire);
    if (auto lost = claim_chunk(job, chunk)) {
      get_logger()->warn("{}", describe_death(pid, wait_status));
      lost->fail(chunk, std::make_exception_ptr(WorkerLostError(describe_death(pid, wait_status))));
    }
  } else if (state != WorkerSlot::kPill && state != WorkerSlot::kRetired) {
    get_logger()->debug("pool worker {} ended while idle (status {})", pid, wait_status);
  }
  s.pid.store(0, std::memory_order_relaxed);
  // It may have held the spinner role: free it, and let the sleeping workers look again.
  doorbells().role.store(Doorbells::kRoleFree, std::memory_order_seq_cst);
  ring_role(true);
  bool replace = false;
  bool all_left = false;
  {
    std::scoped_lock lock(mutex_);
    // A worker that took its poison pill is done for good; any other (crashed, retired after
    // maxtasksperchild) is replaced, even while closing: its pill is still in the queue.
    replace = state != WorkerSlot::kPill && state != WorkerSlot::kInitFailed &&
              state_ != State::kTerminate && broken_.empty();
    if (!replace) --live_workers_;
    all_left = state_ == State::kClose && live_workers_ <= 0;
    if (all_left) zygote_quitting_ = true;
  }
  if (replace) {
    s.state.store(WorkerSlot::kEmpty, std::memory_order_release);
    send_to_zygote('S', index);
  }
  changed_.notify_all();
  return all_left;
}

// Asking again at once would spin as long as fork fails (a process limit): the pool goes on with
// the workers it has, and breaks, as ProcessPoolExecutor does, once it has none left.
bool PoolEngine::on_worker_not_started(int error) {
  std::string why = std::string("a worker process could not be started: ") + std::strerror(error);
  get_logger()->error("{}", why);
  bool none_left = false;
  bool all_left = false;
  {
    std::scoped_lock lock(mutex_);
    none_left = --live_workers_ <= 0 && broken_.empty() && state_ != State::kTerminate;
    if (none_left) broken_ = why + "; no worker is left";
    all_left = state_ == State::kClose && live_workers_ <= 0;
    if (all_left) zygote_quitting_ = true;
  }
  changed_.notify_all();
  if (none_left)
    fail_everything(std::make_exception_ptr(ProcessError(why + "; no worker is left")));
  return all_left;
}

void PoolEngine::on_initializer_failed(std::string_view message) {
  {
    std::scoped_lock lock(mutex_);
    if (!broken_.empty()) return;
    broken_ = "the pool's initializer failed: " + std::string(message);
  }
  get_logger()->critical("{}", broken_);  // as ProcessPoolExecutor logs it
  fail_everything(std::make_exception_ptr(ProcessError(broken_)));
}

void PoolEngine::stop_collector() noexcept {
  if (!collector_.joinable()) return;
  try {
    post_result(std::string_view(&kStopCollector, 1));
  } catch (...) {
    report_error("cannot stop the pool's collector thread");
    collector_.detach();
    return;
  }
  collector_.join();
}

// ---- life cycle ----

void PoolEngine::close() {
  {
    std::scoped_lock lock(mutex_);
    if (state_ != State::kRun) return;
    state_ = State::kClose;
  }
  const char pill = kPoisonPill;
  for (int i = 0; i < config_.processes; ++i) post_task(std::string_view(&pill, 1));
}

void PoolEngine::terminate() {
  {
    std::scoped_lock lock(mutex_);
    if (state_ == State::kTerminate || joined_) return;
    state_ = State::kTerminate;
  }
  send_to_zygote('K', 0);
  fail_everything(
      std::make_exception_ptr(ProcessError("the pool was terminated before this task finished")));
}

void PoolEngine::join() {
  bool closed = false;
  {
    std::unique_lock lock(mutex_);
    if (state_ == State::kRun)
      throw ValueError("Pool is still running: close() or terminate() it first");
    if (joined_) return;
    // After close(): every worker takes a pill once the work before it is done (a crashed one is
    // replaced and its replacement takes it). After terminate(): the zygote kills them.
    if (state_ == State::kClose)
      changed_.wait(lock, [&] { return live_workers_ <= 0 || state_ == State::kTerminate; });
    closed = state_ == State::kClose && !zygote_quitting_;
    joined_ = true;
  }
  // The collector first: it is the only other user of the command socket (replacements).
  stop_collector();
  // Told, not left to notice an end of file: any process forked meanwhile (another pool's
  // zygote, a user's Process) holds a copy of our end of the socket, so EOF may never come.
  if (closed) send_to_zygote('Q', 0);
  zygote_commands_.reset();
  int status = 0;
  retry_on_eintr([&] { return ::waitpid(zygote_, &status, 0); });
  remove_segments_of(zygote_);
  // Results that came in after terminate() have nobody to go to; pending ones have failed.
  fail_everything(
      std::make_exception_ptr(ProcessError("the pool was terminated before this task finished")));
}

std::vector<pid_t> PoolEngine::worker_pids() const {
  std::vector<pid_t> pids;
  for (int i = 0; i < config_.processes; ++i) {
    pid_t pid = slot(static_cast<std::uint32_t>(i)).pid.load(std::memory_order_acquire);
    if (pid > 0) pids.push_back(pid);
  }
  return pids;
}

// ---- pool.h's entry points ----

void check_running(const PoolEngine& engine) { engine.check_running(); }
int processes(const PoolEngine& engine) noexcept { return engine.processes(); }
std::uint64_t open_job(PoolEngine& engine, std::shared_ptr<Job> job) {
  return engine.open_job(std::move(job));
}
void submit_chunk(PoolEngine& engine, std::uint64_t job, std::uint32_t chunk,
                  std::string_view message) {
  engine.submit_chunk(job, chunk, message);
}
void seal_job(PoolEngine& engine, std::uint64_t job) noexcept { engine.seal_job(job); }
bool remote_args(const PoolEngine& engine) noexcept { return engine.remote_args(); }

}  // namespace mproc::detail
