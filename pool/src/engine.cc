#include "engine.h"

#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>

#include "mproc/errors.h"
#include "mproc/log.h"
#include "mproc/pool.h"

#include "child_start.h"
#include "engine_errors.h"
#include "futex.h"
#include "os_error.h"
#include "resource_tracker.h"
#include "wire.h"

namespace mproc::detail {
namespace {

// Task messages are small and many: a ring of a few MiB holds thousands of chunks in flight.
QueueOptions queue_options() {
  return QueueOptions{.maxsize = 0, .capacity = std::size_t{4} << 20};
}

// Under the fork start method the zygote and the workers inherit the pool's shared memory, so it
// needs no name: no file in /dev/shm to create and remove, and no message to the resource
// tracker (a wake-up of its process, on this process's CPU) for each. The other start methods'
// zygotes attach by name.
ByteQueue make_queue(StartMethod method) {
  return method == StartMethod::fork ? ByteQueue::create_unnamed(queue_options())
                                     : ByteQueue(queue_options());
}

SharedSegment make_slots(StartMethod method, std::size_t size) {
  return method == StartMethod::fork ? SharedSegment::create_unnamed(size)
                                     : SharedSegment::create(size);
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

// "300 ms", "2 s", "1.5 s".
std::string describe_duration(std::chrono::nanoseconds d) {
  char text[64];
  double ms = std::chrono::duration<double, std::milli>(d).count();
  if (ms < 1000) {
    std::snprintf(text, sizeof text, "%g ms", ms);
  } else {
    std::snprintf(text, sizeof text, "%g s", ms / 1000);
  }
  return text;
}

// How often the collector looks at timed tasks: a twentieth of the shortest timeout, between 1
// and 25 ms.
constexpr std::chrono::nanoseconds kMinTick = std::chrono::milliseconds(1);
constexpr std::chrono::nanoseconds kMaxTick = std::chrono::milliseconds(25);

}  // namespace

PoolEngine::PoolEngine(PoolConfig config)
    : config_(std::move(config)),
      tasks_(make_queue(config_.start_method)),
      results_(make_queue(config_.start_method)),
      slots_(make_slots(
          config_.start_method,
          sizeof(Doorbells) + sizeof(WorkerSlot) * static_cast<std::size_t>(config_.processes))),
      creator_(::getpid()) {
  new (slots_.data()) Doorbells;
  for (int i = 0; i < config_.processes; ++i) new (&slot(static_cast<std::uint32_t>(i))) WorkerSlot;
  // The zygote first, while this thread may still be the only one; it starts the workers at
  // once, while this thread starts the collector. A constructor that fails here (no thread to be
  // had) tells the zygote to leave, and it kills the workers it started.
  start_zygote();
  live_workers_ = config_.processes;
  if (config_.driven) return;
  try {
    collector_ = std::thread([this] { collect(); });
  } catch (...) {
    // No half-built pool stays behind: the zygote, told to leave (the end of its command socket
    // may never come: see join), kills the workers it started, and is reaped here.
    send_to_zygote('K', 0);
    zygote_commands_.reset();
    wait_for_zygote();
    throw;
  }
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
  // Pairs with a worker's going to sleep (worker_main.cc): either it sees the task in the queue's
  // count, or this thread sees it idle or asleep below.
  std::atomic_thread_fence(std::memory_order_seq_cst);
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

void PoolEngine::post_result(std::string_view message) { results_.put(message, Deadline::never()); }

void PoolEngine::wait_for_zygote() noexcept {
  if (zygote_process_) {
    try {
      zygote_process_->join();  // reaps it and removes what it left in /dev/shm
    } catch (const std::exception& e) {
      report_error(std::string("cannot join the pool's zygote: ") + e.what());
    }
    return;
  }
  int status = 0;
  retry_on_eintr([&] { return ::waitpid(zygote_, &status, 0); });
  remove_segments_of_exited(zygote_);  // a forked zygote leaves by _exit
}

void PoolEngine::start_zygote() {
  // A socket rather than a pipe: a command sent after the zygote left (terminate, then join)
  // must fail quietly (MSG_NOSIGNAL), not raise SIGPIPE in the user's process.
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0)
    throw_errno("create the pool's command socket");
  UniqueFd read_end(fds[0]), write_end(fds[1]);
  if (config_.start_method != StartMethod::fork) {
    start_zygote_by_name(std::move(read_end));
    zygote_commands_ = std::move(write_end);
    return;
  }
  warn_once_if_threaded("Pool (fork start method)");
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
  // The zygote leaves on its own once every worker took its poison pill: 'K' and 'Q' (leave)
  // may then find it gone (ECONNRESET when it left a command unread).
  if (n < 0 && (errno == EPIPE || errno == ECONNRESET) && (command == 'K' || command == 'Q'))
    return;
  if (n != static_cast<ssize_t>(sizeof message))
    report_error("cannot send a command to the pool's zygote process");
}

void PoolEngine::check_running() const {
  std::scoped_lock lock(mutex_);
  if (state_ != State::kRun) throw ValueError("Pool not running");
  if (!broken_.empty()) throw ProcessError(broken_);
}

std::uint64_t PoolEngine::open_job(std::shared_ptr<Job> job) {
  Job& opened = *job;  // kept alive by the caller
  std::uint64_t id = 0;
  {
    std::scoped_lock lock(mutex_);
    if (state_ != State::kRun) throw ValueError("Pool not running");
    if (!broken_.empty()) throw ProcessError(broken_);
    id = next_job_++;
    jobs_[id].job = std::move(job);
  }
  opened.attach(weak_from_this(), id);
  return id;
}

std::uint64_t PoolEngine::open_job(std::shared_ptr<Job> job, const JobLimits& limits) {
  check_limits(limits);
  std::uint64_t id = 0;
  {
    std::scoped_lock lock(mutex_);
    if (state_ != State::kRun) throw ValueError("Pool not running");
    if (!broken_.empty()) throw ProcessError(broken_);
    id = next_job_++;
    JobEntry& entry = jobs_[id];
    entry.job = job;
    entry.timeout = limits.timeout;
    entry.kill_grace = limits.kill_grace;
    if (limits.timeout) {
      entry.task = limits.task;
      timed_jobs_.insert(id);
    }
  }
  job->attach(weak_from_this(), id);
  if (limits.timeout) wake_watcher();
  return id;
}

void PoolEngine::submit_chunk(std::uint64_t job, std::uint32_t chunk, std::string_view message) {
  std::shared_ptr<Job> refused;
  std::string broken;
  {
    std::scoped_lock lock(mutex_);
    auto it = jobs_.find(job);
    if (it == jobs_.end()) throw ValueError("Pool not running");  // terminated meanwhile
    // The job was opened before the pool broke or was terminated, and fail_everything() has
    // failed what it had then: a chunk queued now would wait for a worker that never comes.
    if (state_ == State::kTerminate || !broken_.empty()) {
      refused = it->second.job;
      broken = broken_;
    } else {
      it->second.outstanding.insert(chunk);
      ++it->second.submitted;
    }
  }
  if (refused) {
    refused->fail(
        chunk, broken.empty() ? terminated_error() : std::make_exception_ptr(ProcessError(broken)));
    return;
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

// ---- the collector ----

bool PoolEngine::results_pending() const noexcept {
  const Collecting& c = collecting_;
  return c.batch_handled < c.batch_taken || results_.approx_qsize() != 0;
}

Deadline PoolEngine::look_at_timed() {
  // Only while tasks with a timeout are about (or SIGKILLs are due): a look at them, and a
  // deadline on the wait for the next message. Between looks (a tick apart), results are taken
  // without one.
  Collecting& c = collecting_;
  if (!watching_.load(std::memory_order_relaxed)) return Deadline::never();
  if (Clock::now() < c.next_look) return Deadline::at(c.next_look);
  Deadline until = watch();
  c.next_look = until.when();
  return until;
}

const std::string* PoolEngine::take_result(const Deadline& until) {
  Collecting& c = collecting_;
  if (c.batch_handled < c.batch_taken) return &c.batch[c.batch_handled++];
  c.batch_taken = c.batch_handled = 0;
  bool first = true;
  try {
    (void)results_.get_views(
        until,
        [&](std::string_view item) {
          if (std::exchange(first, false)) {
            c.message.assign(item);
            return;
          }
          if (c.batch.size() == c.batch_taken) c.batch.emplace_back();
          c.batch[c.batch_taken++].assign(item);
        },
        Collecting::kBatch, Collecting::kBatchItemBytes);
  } catch (const Empty&) {
    return nullptr;
  }
  reserve_for_large(c.message);
  return &c.message;
}

void PoolEngine::collect() {
  Collecting& c = collecting_;
  const std::string* message = nullptr;
  while (!c.ended) {
    Deadline until = look_at_timed();
    try {
      // While the queue shows no more, this thread spins briefly before it sleeps in the
      // queue (a wake-up costs more than a whole round trip).
      if (c.streaming) (void)spin_for([this] { return results_pending(); }, kSpinBudget);
      message = take_result(until);
      if (message == nullptr) continue;  // time for the next look
    } catch (const std::exception& e) {
      report_error(std::string("the pool's result queue failed: ") + e.what());
      return;
    }
    on_collected(*message);
  }
}

std::size_t PoolEngine::collect_until(const Deadline& until) {
  Collecting& c = collecting_;
  std::size_t handled = 0;
  while (!c.ended) {
    const Deadline look = look_at_timed();
    const std::string* message = nullptr;
    if (handled == 0 && !until.expired()) {
      // A wait, as the collector thread's: in the queue, until `until` or the next look.
      message = take_result(look.when() < until.when() ? look : until);
      if (message == nullptr) continue;
    } else {
      // A poll: the count first, so that a poll with nothing to take costs no lock.
      if (!results_pending()) break;
      message = take_result(Deadline::now());
      if (message == nullptr) break;
    }
    ++handled;
    on_collected(*message);
  }
  return handled;
}

void PoolEngine::on_collected(const std::string& message) {
  Collecting& c = collecting_;
  if (message.empty()) return;
  // Whether the last message was a chunk's results: only then is another likely to follow soon
  // enough to be worth the spin. After a worker's start or death notice, the spin would only take
  // a CPU from the processes starting or leaving.
  c.streaming = message[0] == kResultMessage || message[0] == kPackedResults;
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
        on_packed_results(reader, c.remote_results);
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
          c.ended = true;
        }
        break;
      }
      case kInitializerFailed: {
        reader.u32();
        reader.i32();
        reader.i32();
        on_initializer_failed(reader.remaining());
        break;
      }
      case kBouncedChunk:
        on_bounced(message);
        break;
      case kWakeCollector:
        c.next_look = Clock::time_point::min();  // watching_ is set: look now
        break;
      case kStopCollector:
        c.ended = true;
        break;
      default:
        report_error("the pool's collector got an unknown message");
    }
  } catch (const std::exception& e) {
    report_error(std::string("the pool's collector got a bad message: ") + e.what());
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
    char* into = nullptr;
    if (job) {
      into = job->packed_destination(packed.chunk, packed.results.count, packed.results.size);
      if (into == nullptr) {
        if (buffer.size() < bytes) buffer.resize(bytes);
        into = buffer.data();
      }
      read = read_remote(where.pid, where.address, into, bytes);
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
    packed.results.values = std::string_view(into, bytes);
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
  fail_everything(terminated_error());
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
    auto workers_left = [&] { return live_workers_ <= 0 || state_ == State::kTerminate; };
    if (state_ == State::kClose && config_.driven) {
      // Nobody else takes the workers' notices: this thread does, until the last has left.
      while (!workers_left()) {
        lock.unlock();
        (void)collect_until(Deadline::after(kMaxTick));
        lock.lock();
      }
    } else if (state_ == State::kClose) {
      changed_.wait(lock, workers_left);
    }
    closed = state_ == State::kClose && !zygote_quitting_;
    joined_ = true;
  }
  // The collector first: it is the only other user of the command socket (replacements).
  stop_collector();
  // Told, not left to notice an end of file: any process forked meanwhile (another pool's
  // zygote, a user's Process) holds a copy of our end of the socket, so EOF may never come.
  if (closed) send_to_zygote('Q', 0);
  zygote_commands_.reset();
  wait_for_zygote();
  // Results that came in after terminate() have nobody to go to; pending ones have failed.
  fail_everything(terminated_error());
}

std::vector<pid_t> PoolEngine::worker_pids() const {
  std::vector<pid_t> pids;
  for (int i = 0; i < config_.processes; ++i) {
    pid_t pid = slot(static_cast<std::uint32_t>(i)).pid.load(std::memory_order_acquire);
    if (pid > 0) pids.push_back(pid);
  }
  return pids;
}

// ---- timeouts, cancels, forced shutdown ----

PoolEngine::SlotView PoolEngine::read_slot(std::uint32_t index) const {
  const WorkerSlot& s = slot(index);
  // A worker writes job and chunk, then its state (release): read them twice around the state,
  // and trust the look only if they did not change meanwhile.
  for (int attempt = 0; attempt < 8; ++attempt) {
    std::uint64_t job = s.job.load(std::memory_order_acquire);
    std::uint32_t chunk = s.chunk.load(std::memory_order_acquire);
    SlotView view;
    view.state = s.state.load(std::memory_order_acquire);
    view.pid = s.pid.load(std::memory_order_acquire);
    view.job = s.job.load(std::memory_order_acquire);
    view.chunk = s.chunk.load(std::memory_order_acquire);
    if (view.job == job && view.chunk == chunk) return view;
  }
  return SlotView{};
}

bool PoolEngine::slot_runs(std::uint32_t index, pid_t pid, std::uint64_t job,
                           std::uint32_t chunk) const {
  SlotView view = read_slot(index);
  return view.pid == pid && view.state == WorkerSlot::kBusy && view.job == job &&
         view.chunk == chunk;
}

void PoolEngine::wake_watcher(bool always) noexcept {
  bool wake = false;
  {
    std::scoped_lock lock(mutex_);
    wake = !watching_.exchange(true, std::memory_order_relaxed) || always;
  }
  if (!wake) return;
  try {
    post_result(std::string_view(&kWakeCollector, 1));
  } catch (...) {
    report_error("cannot wake the pool's collector thread for a task timeout");
  }
}

void PoolEngine::stop_worker(pid_t pid, std::chrono::nanoseconds grace) {
  UniqueFd fd(pidfd_open(pid));
  const int first = grace.count() > 0 ? SIGTERM : SIGKILL;
  if (!fd) {
    if (errno != ESRCH) ::kill(pid, first);  // no pidfd here (an old kernel): by pid
    return;
  }
  if (pidfd_send_signal(fd.get(), first) != 0 || first == SIGKILL) return;
  {
    std::scoped_lock lock(mutex_);
    pending_kills_.push_back(PendingKill{std::move(fd), Clock::now() + grace});
  }
  wake_watcher(/*always=*/true);  // its next look may be later than this SIGKILL
}

Deadline PoolEngine::watch() {
  const auto now = Clock::now();
  std::vector<Expired> expired;
  std::vector<UniqueFd> due;
  auto next = Clock::time_point::max();
  const auto workers = static_cast<std::uint32_t>(config_.processes);
  if (seen_.size() != workers) seen_.assign(workers, Seen{});
  {
    std::scoped_lock lock(mutex_);
    for (auto it = pending_kills_.begin(); it != pending_kills_.end();) {
      if (it->at <= now) {
        due.push_back(std::move(it->pidfd));
        it = pending_kills_.erase(it);
      } else {
        next = std::min(next, it->at);
        ++it;
      }
    }
    std::erase_if(timed_jobs_, [&](std::uint64_t id) { return jobs_.count(id) == 0; });
    if (!timed_jobs_.empty()) {
      auto tick = kMaxTick;
      for (std::uint64_t id : timed_jobs_)
        tick = std::min(tick, std::max(kMinTick, *jobs_.at(id).timeout / 20));
      next = std::min(next, now + tick);
    }
    for (std::uint32_t i = 0; i < workers; ++i) {
      Seen& seen = seen_[i];
      SlotView view = timed_jobs_.empty() ? SlotView{} : read_slot(i);
      auto entry = view.state == WorkerSlot::kBusy && timed_jobs_.count(view.job) != 0
                       ? jobs_.find(view.job)
                       : jobs_.end();
      if (entry == jobs_.end() || entry->second.outstanding.count(view.chunk) == 0) {
        seen = Seen{};
        continue;
      }
      if (seen.pid != view.pid || seen.job != view.job || seen.chunk != view.chunk)
        seen = Seen{view.pid, view.job, view.chunk, now};  // taken since the last look
      const auto deadline = seen.since + *entry->second.timeout;
      if (deadline > now) {
        next = std::min(next, deadline);
        continue;
      }
      expired.push_back(Expired{i, view.pid, view.job, view.chunk, *entry->second.timeout,
                                entry->second.kill_grace, entry->second.task});
      seen = Seen{};
    }
    if (next == Clock::time_point::max() && expired.empty())
      watching_.store(false, std::memory_order_relaxed);
  }
  for (UniqueFd& fd : due) (void)pidfd_send_signal(fd.get(), SIGKILL);
  for (const Expired& e : expired) time_out(e);
  if (!expired.empty()) return Deadline::now();  // look again at once (grace kills, ...)
  return next == Clock::time_point::max() ? Deadline::never() : Deadline::at(next);
}

void PoolEngine::time_out(const Expired& e) {
  // Claimed first: a result that comes in now is dropped, and the chunk fails only once.
  std::shared_ptr<Job> job = claim_chunk(e.job, e.chunk);
  if (!job) return;  // its result came in meanwhile
  std::string how = "killed";
  if (slot_runs(e.slot, e.pid, e.job, e.chunk)) {
    stop_worker(e.pid, e.kill_grace);
    if (e.kill_grace.count() > 0)
      how = "sent SIGTERM (SIGKILL " + describe_duration(e.kill_grace) + " later)";
  } else {
    how = "not stopped: it had just finished";
  }
  std::string text = "task \"" + e.task + "\" ran longer than its timeout of " +
                     describe_duration(e.timeout) + " and was stopped (its worker process " +
                     std::to_string(e.pid) + " was " + how + ")";
  get_logger()->warn("{}", text);
  job->fail(e.chunk, std::make_exception_ptr(TimeoutError(text)));
}

void PoolEngine::on_bounced(std::string_view message) {
  std::string_view chunk_message = message.substr(1);
  WireReader reader(chunk_message.substr(0, kChunkPrefixSize));
  reader.tag();
  std::uint64_t job = reader.u64();
  std::uint32_t chunk = reader.u32();
  {
    std::scoped_lock lock(mutex_);
    auto it = jobs_.find(job);
    if (it == jobs_.end() || it->second.outstanding.count(chunk) == 0) return;  // cancelled
  }
  // The cancel was taken back (the job had started): the chunk runs after all.
  get_logger()->debug("pool: chunk {} of job {} sent back by a cancel taken back: put back", chunk,
                      job);
  try {
    post_task(chunk_message);
  } catch (...) {
    if (auto lost = claim_chunk(job, chunk)) lost->fail(chunk, std::current_exception());
  }
}

bool PoolEngine::cancel_job(std::uint64_t id, bool interrupt) {
  struct Running {
    std::uint32_t slot;
    pid_t pid;
    std::uint32_t chunk;
  };
  std::vector<Running> running;
  std::vector<std::uint32_t> chunks;
  std::shared_ptr<Job> job;
  std::chrono::nanoseconds grace{0};
  {
    std::scoped_lock lock(mutex_);
    auto it = jobs_.find(id);
    if (it == jobs_.end() || !it->second.sealed || it->second.outstanding.empty()) return false;
    JobEntry& entry = it->second;
    // Marked first, then the slots looked at: a worker that takes a chunk of the job from now
    // on sends it back (and one that took it before shows as busy with it).
    auto mark = doorbells().cancel_mark(id);
    const std::uint64_t before = mark.exchange(id, std::memory_order_seq_cst);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    for (std::uint32_t i = 0; i < static_cast<std::uint32_t>(config_.processes); ++i) {
      SlotView view = read_slot(i);
      if (view.state == WorkerSlot::kBusy && view.job == id &&
          entry.outstanding.count(view.chunk) != 0)
        running.push_back(Running{i, view.pid, view.chunk});
    }
    const bool started = !running.empty() || entry.submitted > entry.outstanding.size();
    if (started && !interrupt) {
      std::uint64_t expected = id;
      mark.compare_exchange_strong(expected, before, std::memory_order_seq_cst);
      return false;
    }
    job = entry.job;
    grace = entry.kill_grace;
    chunks.assign(entry.outstanding.begin(), entry.outstanding.end());
    jobs_.erase(it);
  }
  for (const Running& r : running)
    if (slot_runs(r.slot, r.pid, id, r.chunk)) stop_worker(r.pid, grace);
  job->mark_cancelled();
  auto error = std::make_exception_ptr(CancelledError(
      running.empty() ? "the task was cancelled before it started"
                      : "the task was cancelled while it ran (its worker was stopped)"));
  for (std::uint32_t chunk : chunks) job->fail(chunk, error);
  return true;
}

void PoolEngine::terminate_workers(int signal) {
  struct Failed {
    std::shared_ptr<Job> job;
    std::uint32_t chunk;
    bool cancelled;
  };
  std::vector<Failed> failed;
  std::vector<pid_t> pids;
  {
    std::scoped_lock lock(mutex_);
    if (state_ == State::kTerminate || joined_) return;
    state_ = State::kTerminate;
    std::set<std::pair<std::uint64_t, std::uint32_t>> busy;
    for (std::uint32_t i = 0; i < static_cast<std::uint32_t>(config_.processes); ++i) {
      SlotView view = read_slot(i);
      if (view.pid > 0) pids.push_back(view.pid);
      if (view.state == WorkerSlot::kBusy) busy.emplace(view.job, view.chunk);
    }
    for (auto& [id, entry] : jobs_) {
      bool ran = std::any_of(entry.outstanding.begin(), entry.outstanding.end(),
                             [&, id = id](std::uint32_t c) {
                               return busy.count({id, c}) != 0;
                             });
      for (std::uint32_t chunk : entry.outstanding)
        failed.push_back(Failed{entry.job, chunk, !ran});
      entry.outstanding.clear();
    }
    std::erase_if(jobs_, [](const auto& item) { return item.second.sealed; });
  }
  for (pid_t pid : pids) {
    UniqueFd fd(pidfd_open(pid));
    if (fd) {
      (void)pidfd_send_signal(fd.get(), signal);
    } else if (errno != ESRCH) {
      ::kill(pid, signal);
    }
  }
  const ForcedShutdownErrors errors = forced_shutdown_errors(signal);
  for (Failed& f : failed) {
    if (f.cancelled) f.job->mark_cancelled();
    f.job->fail(f.chunk, f.cancelled ? errors.not_started : errors.running);
  }
  changed_.notify_all();
}

}  // namespace mproc::detail
