// A pool worker: take a chunk, run its calls, send the results, until a poison pill, the
// maxtasksperchild limit or the end of the queue. Nothing escapes: every exception of a task is
// captured into its result (run_call never throws), and the worker leaves with _exit.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <deque>
#include <optional>
#include <utility>
#include <vector>

#include "mproc/envelope.h"
#include "mproc/errors.h"
#include "mproc/log.h"
#include "mproc/task.h"

#include "engine.h"
#include "futex.h"
#include "wire.h"

namespace mproc::detail {
namespace {

// A result array sent by reference, owned (unmapped when dropped). Its size is the whole
// mapping, so that a spare is taken for any chunk it can hold.
class ResultArray {
 public:
  explicit ResultArray(std::size_t bytes)
      : bytes_(large_capacity(bytes)), data_(static_cast<char*>(allocate_large(bytes))) {}
  ResultArray(ResultArray&& other) noexcept
      : bytes_(other.bytes_), data_(std::exchange(other.data_, nullptr)) {}
  ResultArray& operator=(ResultArray&& other) noexcept {
    std::swap(bytes_, other.bytes_);
    std::swap(data_, other.data_);
    return *this;
  }
  ResultArray(const ResultArray&) = delete;
  ResultArray& operator=(const ResultArray&) = delete;
  ~ResultArray() { free_large(data_, bytes_); }

  [[nodiscard]] std::size_t bytes() const noexcept { return bytes_; }
  [[nodiscard]] char* data() const noexcept { return data_; }

 private:
  std::size_t bytes_;
  char* data_;
};

// The arrays this worker sent by reference, each kept until the collector has read it, and then
// kept for the next chunk: the kernel zero-fills every page of a fresh array on its first touch,
// which was half of all samples of a map over a million items; a reused array costs nothing.
// Spares are bounded, so a worker that once sent a huge array does not keep it.
class ResultArrays {
 public:
  // An array of at least `bytes` for the results numbered `seq`.
  char* take(std::uint64_t seq, std::size_t bytes) {
    auto fits = std::find_if(spare_.begin(), spare_.end(),
                             [&](const ResultArray& a) { return a.bytes() >= bytes; });
    if (fits != spare_.end()) {
      sent_.emplace_back(seq, std::move(*fits));
      spare_.erase(fits);
    } else {
      sent_.emplace_back(seq, ResultArray(bytes));
    }
    return sent_.back().second.data();
  }

  // The collector has read every array up to `read`.
  void release_read(std::uint64_t read) {
    while (!sent_.empty() && sent_.front().first <= read) {
      ResultArray array = std::move(sent_.front().second);
      sent_.pop_front();
      if (array.bytes() <= kMaxSpareBytes && spare_.size() < kMaxSpares)
        spare_.push_back(std::move(array));
    }
  }

 private:
  static constexpr std::size_t kMaxSpares = 2;
  static constexpr std::size_t kMaxSpareBytes = std::size_t{32} << 20;
  std::deque<std::pair<std::uint64_t, ResultArray>> sent_;
  std::vector<ResultArray> spare_;
};

// Runs a 'B' chunk into a 'Q' message: one lookup of the task, then its batch form over the whole
// array, going on after each item that throws (its exception is captured, as run_call does).
// Arguments read from the submitting process are answered in kind: the results stay in this
// process, in an array of `sent` (kept until the collector has read it).
// Returns false, with nothing run, when the arguments are in a process this one cannot read.
bool run_packed_chunk(std::string_view message, std::string& results, LargeBytes& remote_args,
                      RemoteResults& where, ResultArrays& sent) {
  WireReader reader(message);
  PackedChunk chunk = read_packed_chunk(reader);
  if (chunk.remote) {
    std::size_t size = std::size_t{chunk.count} * chunk.arg_size;
    if (remote_args.size() < size) remote_args.resize(size);
    if (!read_remote(chunk.pid, chunk.address, remote_args.data(), size)) return false;
    chunk.args = std::string_view(remote_args.data(), size);
  }
  const TaskEntry* entry = find_task(chunk.name);
  std::vector<std::pair<std::uint32_t, std::string>> errors;
  auto capture = [&](std::uint32_t index) {
    try {
      errors.emplace_back(index, capture_current_exception());
    } catch (...) {
      errors.emplace_back(index, std::string());  // stands for std::bad_alloc
    }
  };
  if (entry == nullptr || entry->batch.invoke == nullptr ||
      entry->batch.arg_size != chunk.arg_size) {
    // Not the program that sent it, or a different build of it: every item fails alike.
    begin_packed_results(results, chunk.job, chunk.chunk, chunk.count, 0);
    for (std::uint32_t i = 0; i < chunk.count; ++i) {
      try {
        if (entry == nullptr) (void)invoke_task(chunk.name, {});  // throws NotRegisteredError
        throw SerializationError("task \"" + std::string(chunk.name) +
                                 "\" has no batch form of this shape in this process");
      } catch (...) {
        capture(i);
      }
    }
    end_packed_results(results, errors);
    return true;
  }
  const BatchCodec& batch = entry->batch;
  char* out = nullptr;
  if (chunk.remote) {
    std::size_t bytes = std::size_t{chunk.count} * batch.result_size;
    out = sent.take(++where.seq, bytes);
    where.address = reinterpret_cast<std::uintptr_t>(out);
    begin_packed_results(results, chunk.job, chunk.chunk, chunk.count, batch.result_size, &where);
  } else {
    // Two statements: begin_packed_results may move the buffer, so data() must be read after it.
    const std::size_t at =
        begin_packed_results(results, chunk.job, chunk.chunk, chunk.count, batch.result_size);
    out = results.data() + at;
  }
  for (std::uint32_t first = 0; first < chunk.count;) {
    std::uint32_t done = 0;
    try {
      batch.invoke(chunk.args.data() + std::size_t{first} * batch.arg_size,
                   out + std::size_t{first} * batch.result_size, chunk.count - first, done);
      break;
    } catch (...) {
      capture(first + done);
      first += done + 1;
    }
  }
  end_packed_results(results, errors);
  return true;
}

// Whether `message` is a chunk of a job that the pool is cancelling (Doorbells::cancelled_jobs).
// The fence pairs with the pool's: it either sees this worker busy with the chunk (the claim's
// stores come before) or this worker sees its mark.
bool cancelled_chunk(Doorbells& d, std::string_view message) noexcept {
  if (message.size() < kChunkPrefixSize ||
      (message[0] != kChunkMessage && message[0] != kPackedChunk))
    return false;
  std::uint64_t job = 0;
  std::memcpy(&job, message.data() + 1, 8);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  return job != 0 && d.cancel_mark(job).load(std::memory_order_relaxed) == job;
}

// This process's resident memory in bytes (/proc/self/statm, opened once); 0 if unknown.
std::size_t resident_bytes(int& statm) noexcept {
  if (statm < 0) statm = ::open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  char text[128];
  ssize_t n = statm < 0 ? -1 : ::pread(statm, text, sizeof text - 1, 0);
  if (n <= 0) return 0;
  text[n] = '\0';
  unsigned long size = 0, resident = 0;
  if (std::sscanf(text, "%lu %lu", &size, &resident) != 2) return 0;
  return static_cast<std::size_t>(resident) * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

}  // namespace

// Takes the next task. Idle workers share one "spinner" role (Doorbells): the worker holding it
// spins briefly for the next chunk (a wake-up costs more than a short task) and keeps the role
// while it runs the chunk it got, unless more chunks wait, when it hands the role on (in a driven
// pool it only looks a few times: PoolConfig::driven). The others sleep on the role's futex, not
// in the queue, so a chunk taken by the spinner wakes nobody. A sleeper is woken when the role is
// handed on or freed (a worker died), and by the pool when it puts a chunk while no worker spins
// (the holder is busy, or spun in vain: role kRoleIdle).
void PoolEngine::take_task(std::string& message, bool& have_role,
                           const std::function<void(std::string_view)>& claim) {
  Doorbells& d = doorbells();
  // The queue's own count, exact as of its last commit: a chunk is waiting when it says so, save
  // for the moment another worker takes it.
  auto waiting = [&] { return tasks_.approx_qsize() != 0; };
  auto try_take = [&] {
    try {
      tasks_.get(message, Deadline::now(), claim);
      return true;
    } catch (const Empty&) {  // another worker was first
      return false;
    }
  };
  // Whether a worker without the role should look (rather than sleep).
  auto should_look = [&] {
    std::uint32_t role = d.role.load(std::memory_order_seq_cst);
    return role == Doorbells::kRoleFree || (role != Doorbells::kRoleSpinning && waiting());
  };
  for (;;) {
    if (!have_role) {
      std::uint32_t role = d.role.load(std::memory_order_seq_cst);
      if (role == Doorbells::kRoleFree || role == Doorbells::kRoleIdle) {
        have_role = d.role.compare_exchange_strong(role, Doorbells::kRoleSpinning,
                                                   std::memory_order_seq_cst);
        if (!have_role) continue;
      } else if (waiting()) {
        // Chunks wait (put while the holder runs one, or more than the spinner can take): this
        // worker takes one itself. Sleeping until the spinner hands the role on would cost a
        // futex wake-up for every chunk of a backlog.
        if (try_take()) return;
        continue;
      } else {
        std::uint32_t seq = d.role_seq.load(std::memory_order_seq_cst);
        d.role_sleepers.fetch_add(1, std::memory_order_seq_cst);
        if (!should_look()) (void)futex_wait(d.role_seq, seq, Deadline::never());
        d.role_sleepers.fetch_sub(1, std::memory_order_seq_cst);
        continue;
      }
    }
    // The role is ours: spin for a chunk.
    d.role.store(Doorbells::kRoleSpinning, std::memory_order_seq_cst);
    // The clock only once there is something to wait for: a chunk already queued (a new worker's
    // first, or its poison pill) is taken without it.
    std::optional<Clock::time_point> until;
    auto budget = [&] {
      if (!until) until = Clock::now() + (config_.driven ? Clock::duration::zero() : kSpinBudget);
      return *until - Clock::now();
    };
    while (waiting() || spin_for(waiting, budget())) {
      if (try_take()) {
        // Keep the role while busy, unless more chunks wait: then another worker takes it.
        d.role.store(Doorbells::kRoleBusy, std::memory_order_seq_cst);
        if (waiting()) {
          have_role = false;
          d.role.store(Doorbells::kRoleFree, std::memory_order_seq_cst);
          ring_role(false);
        }
        return;
      }
    }
    // Nothing came: sleep with the others, until the pool puts a chunk. A chunk put while the
    // role still read "spinning" rang no bell: look once more after saying "idle".
    d.role.store(Doorbells::kRoleIdle, std::memory_order_seq_cst);
    have_role = false;
    if (waiting()) continue;
    std::uint32_t seq = d.role_seq.load(std::memory_order_seq_cst);
    d.role_sleepers.fetch_add(1, std::memory_order_seq_cst);
    if (!should_look()) (void)futex_wait(d.role_seq, seq, Deadline::never());
    d.role_sleepers.fetch_sub(1, std::memory_order_seq_cst);
  }
}

void PoolEngine::worker_main(std::uint32_t slot_index) {
  ::signal(SIGINT, SIG_IGN);
  set_log_process_name("PoolWorker-" + std::to_string(slot_index + 1));
  WorkerSlot& me = slot(slot_index);
  pid_t self = ::getpid();
  me.pid.store(self, std::memory_order_release);
  me.state.store(WorkerSlot::kIdle, std::memory_order_release);
  auto leave = [](int code) {
    std::fflush(nullptr);
    ::_exit(code);
  };
  if (config_.initializer) {
    try {
      config_.initializer();
    } catch (...) {
      std::string text;
      try {
        throw;
      } catch (const std::exception& e) {
        text = e.what();
      } catch (...) {
        text = "a non-std exception";
      }
      me.state.store(WorkerSlot::kInitFailed, std::memory_order_release);
      try {
        post_result(worker_notice(kInitializerFailed, slot_index, self, 0, text));
      } catch (...) {
      }
      leave(1);
    }
  }
  std::string message;
  std::string results;
  LargeBytes remote_args;
  ResultArrays sent;
  RemoteResults where{self, 0, slot_index, me.results_read.load(std::memory_order_acquire)};
  int done = 0;
  // Runs under the task queue's lock, before the item leaves the queue: if this process dies
  // from here on, the slot already names the chunk, so the collector fails it.
  auto claim = [&](std::string_view item) {
    if (!item.empty() && item[0] == kPoisonPill) {
      me.state.store(WorkerSlot::kPill, std::memory_order_release);
      return;
    }
    // Never throws: a chunk too short to name its job is taken anyway (and reported below)
    // rather than left at the head of the queue to trip every worker in turn.
    std::uint64_t job = 0;
    std::uint32_t chunk = 0;
    if (item.size() >= kChunkPrefixSize) {
      WireReader reader(item.substr(0, kChunkPrefixSize));
      reader.tag();
      job = reader.u64();
      chunk = reader.u32();
    }
    me.job.store(job, std::memory_order_relaxed);
    me.chunk.store(chunk, std::memory_order_relaxed);
    me.state.store(WorkerSlot::kBusy, std::memory_order_release);
  };
  // max_memory_per_child: checked after each chunk, only when set.
  int statm = -1;
  auto over_memory = [&] {
    if (config_.max_memory_per_child == 0) return false;
    std::size_t resident = resident_bytes(statm);
    if (resident <= config_.max_memory_per_child) return false;
    get_logger()->debug("pool worker leaves: resident memory {} above max_memory_per_child {}",
                        resident, config_.max_memory_per_child);
    return true;
  };
  bool have_role = false;
  for (;;) {
    try {
      take_task(message, have_role, claim);
    } catch (const std::exception& e) {
      get_logger()->error("pool worker cannot read the task queue: {}", e.what());
      leave(2);
    }
    if (message.empty() || message[0] == kPoisonPill) leave(0);
    if (cancelled_chunk(doorbells(), message)) {
      // Not run: back to the collector, which drops it (or puts it back: see cancelled_jobs).
      message.insert(message.begin(), kBouncedChunk);
      try {
        post_result(message);
      } catch (const std::exception& e) {
        get_logger()->error("pool worker cannot send back a cancelled chunk: {}", e.what());
        leave(3);
      }
      me.state.store(WorkerSlot::kIdle, std::memory_order_release);
      continue;
    }
    try {
      if (message[0] == kPackedChunk) {
        sent.release_read(me.results_read.load(std::memory_order_acquire));
        if (!run_packed_chunk(message, results, remote_args, where, sent)) {
          message[0] = kNeedInline;  // back to the collector, which sends it inline
          post_result(message);
          me.state.store(WorkerSlot::kIdle, std::memory_order_release);
          continue;
        }
        post_result(results);
        reserve_for_large(results);
        me.state.store(WorkerSlot::kIdle, std::memory_order_release);
        if ((config_.maxtasksperchild > 0 && ++done >= config_.maxtasksperchild) || over_memory()) {
          me.state.store(WorkerSlot::kRetired, std::memory_order_release);
          leave(0);
        }
        continue;
      }
      WireReader reader(message);
      ChunkHeader header = read_chunk_header(reader);
      begin_results(results, header.job, header.chunk, header.count);
      for (std::uint32_t i = 0; i < header.count; ++i) {
        std::string_view args = reader.bytes(reader.u64());
        ResultEnvelope result = run_call(CallView{0, header.name, args});
        add_result(results, result.status, result.payload);
      }
      post_result(results);
      reserve_for_large(results);
    } catch (const std::exception& e) {
      // A malformed chunk or a result queue that refuses: this worker cannot go on. Leaving
      // makes the collector fail the chunk and start a replacement.
      get_logger()->error("pool worker failed on a chunk: {}", e.what());
      leave(3);
    }
    me.state.store(WorkerSlot::kIdle, std::memory_order_release);
    if ((config_.maxtasksperchild > 0 && ++done >= config_.maxtasksperchild) || over_memory()) {
      me.state.store(WorkerSlot::kRetired, std::memory_order_release);
      leave(0);
    }
  }
}

}  // namespace mproc::detail
