// The machinery behind mproc::Pool: queues, worker slots, the zygote and the collector thread.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "mproc/async_result.h"
#include "mproc/connection.h"
#include "mproc/deadline.h"
#include "mproc/detail/byte_queue.h"
#include "mproc/pool.h"
#include "mproc/process.h"
#include "mproc/shm.h"
#include "mproc/task.h"

#include "chunk_set.h"
#include "unique_fd.h"
#include "wire.h"

namespace mproc::detail {

// One worker's record in shared memory, written by the worker, read by the collector after the
// worker died: which chunk it had taken. The worker writes it while it holds the task queue's
// lock and before the chunk leaves the queue, so no chunk is ever taken without its slot saying
// so (see ByteQueue::get's claim).
struct WorkerSlot {
  enum State : std::uint32_t { kEmpty, kIdle, kBusy, kPill, kRetired, kInitFailed };
  std::atomic<std::int32_t> pid{0};
  std::atomic<std::uint32_t> state{kEmpty};
  std::atomic<std::uint64_t> job{0};
  std::atomic<std::uint32_t> chunk{0};
  // The last result array sent by reference ('Q', where 1) that the collector has read: the
  // worker frees those up to it. Written by the collector only, for the worker whose pid it is.
  std::atomic<std::uint64_t> results_read{0};
};

// What the pool and its workers share beside the slots, apart from the queues. Waiters spin on
// the queues' own counts (ByteQueue::approx_qsize), which no killed process can leave wrong.
struct Doorbells {
  // The "spinner" role among idle workers (worker_main.cc): one worker at a time spins for the
  // next chunk; the others sleep on `role_seq` rather than in the queue, so that a chunk put
  // while one worker is spinning wakes nobody (on a machine with few CPUs, every other waking
  // or spinning worker takes a CPU from the threads doing the round trip).
  enum Role : std::uint32_t { kRoleFree = 0, kRoleSpinning = 1, kRoleBusy = 2, kRoleIdle = 3 };
  alignas(64) std::atomic<std::uint32_t> role{kRoleFree};
  alignas(64) std::atomic<std::uint32_t> role_seq{0};  // futex word: bumped on role changes
  std::atomic<std::uint32_t> role_sleepers{0};
  // Jobs being cancelled (AsyncResult::cancel), at job % kCancelTableSize: a worker that takes a
  // chunk of such a job does not run it but sends it back to the collector ('C'), which drops it,
  // or puts it back if the cancel was taken back (the job had started). Written by the pool,
  // read by the workers after their claim (with a fence on both sides: either the pool sees
  // the worker busy with the chunk or the worker sees the mark).
  static constexpr std::size_t kCancelTableSize = 4096;
  // The mark of `job`'s entry, as an atomic.
  [[nodiscard]] std::atomic_ref<std::uint64_t> cancel_mark(std::uint64_t job) noexcept {
    return std::atomic_ref<std::uint64_t>(cancelled_jobs[job % kCancelTableSize]);
  }
  // No initializer, so that constructing the Doorbells leaves the table alone: the segment comes
  // zero-filled from the kernel, and writing its 32 KiB would fault in 8 pages at every pool
  // start (and free them again at its end) for a table most pools never use.
  alignas(64) std::uint64_t cancelled_jobs[kCancelTableSize];
};

struct PoolConfig {
  int processes = 1;
  std::function<void()> initializer;
  int maxtasksperchild = 0;                      // 0: unlimited
  std::size_t max_memory_per_child = 0;          // bytes of resident memory; 0: unlimited
  StartMethod start_method = StartMethod::fork;  // how the zygote starts (see zygote.cc)
  // No collector thread: the owner takes the results with collect_until() (mproc::dist's node
  // agent, whose one thread polls both MPI and this pool). Its idle workers sleep at once
  // instead of spinning for the next chunk (worker_main.cc): the owner's thread spins already,
  // and a second spinner only takes the CPU it needs to pass the chunk on (a task's round trip
  // across ranks: 26-29 us instead of 38-41 us, 3 ranks on 2 CPUs).
  bool driven = false;
};

// What a zygote started by spawn or by the fork server is given (zygote.cc): the names of the
// pool's shared objects, its settings, and its end of the command socket.
struct ZygoteStart {
  std::string tasks;
  std::string results;
  std::string slots;
  std::int32_t processes = 0;
  std::int32_t maxtasksperchild = 0;
  std::uint64_t max_memory_per_child = 0;
  std::int32_t creator = 0;
  std::uint8_t start_method = 0;
  bool driven = false;
  std::optional<TaskCall> initializer;
  Connection commands;

  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar& tasks& results& slots& processes& maxtasksperchild& max_memory_per_child& creator&
        start_method& driven& initializer& commands;
  }
};

struct JobLimits;

class PoolEngine : public Engine, public std::enable_shared_from_this<PoolEngine> {
 public:
  explicit PoolEngine(PoolConfig config);
  // The engine as a zygote started by spawn or the fork server sees it: attached to the pool's
  // shared objects by name; it only runs zygote_main.
  explicit PoolEngine(const ZygoteStart& start);
  ~PoolEngine() override;

  void check_running() const override;
  std::uint64_t open_job(std::shared_ptr<Job> job) override;
  // A job with a per-task timeout (or kill grace): the collector watches its chunks.
  std::uint64_t open_job(std::shared_ptr<Job> job, const JobLimits& limits) override;
  // AsyncResult::cancel (any thread).
  bool cancel_job(std::uint64_t job, bool interrupt) override;
  // Pool::terminate_workers (SIGTERM) and kill_workers (SIGKILL).
  void terminate_workers(int signal) override;
  void submit_chunk(std::uint64_t job, std::uint32_t chunk, std::string_view message) override;
  void seal_job(std::uint64_t job) noexcept override;

  void close() override;
  void terminate() override;
  void join() override;

  [[nodiscard]] int processes() const noexcept override { return config_.processes; }
  [[nodiscard]] bool remote_args() const noexcept override {
    return remote_args_.load(std::memory_order_relaxed);
  }
  [[nodiscard]] std::vector<pid_t> worker_pids() const override;

  // A driven pool's collector (PoolConfig::driven), run by its owner's one thread: handles the
  // messages its workers have sent, waiting until `until` for the first (an expired deadline:
  // only a look, which costs no lock when there is nothing). Returns how many it handled.
  // Throws what the result queue throws.
  std::size_t collect_until(const Deadline& until);

  // What the zygote and the workers run (zygote.cc, worker_main.cc); they never return.
  [[noreturn]] void zygote_main(int command_fd);
  [[noreturn]] void worker_main(std::uint32_t slot);

 private:
  enum class State { kRun, kClose, kTerminate };
  struct JobEntry {
    std::shared_ptr<Job> job;
    ChunkSet outstanding;  // submitted chunks whose results are not in yet
    bool sealed = false;
    std::uint32_t submitted = 0;                      // chunks ever submitted
    std::optional<std::chrono::nanoseconds> timeout;  // per chunk, from when a worker takes it
    std::chrono::nanoseconds kill_grace{0};
    std::string task;  // for the TimeoutError, when timed
  };
  // A consistent look at a worker slot (pid, state, job, chunk).
  struct SlotView {
    pid_t pid = 0;
    std::uint32_t state = WorkerSlot::kEmpty;
    std::uint64_t job = 0;
    std::uint32_t chunk = 0;
  };
  // The collector's record of what each slot runs, and since when (watch()).
  struct Seen {
    pid_t pid = 0;
    std::uint64_t job = 0;
    std::uint32_t chunk = 0;
    Clock::time_point since{};
  };
  // A chunk past its deadline (watch() -> time_out()).
  struct Expired {
    std::uint32_t slot = 0;
    pid_t pid = 0;
    std::uint64_t job = 0;
    std::uint32_t chunk = 0;
    std::chrono::nanoseconds timeout{0};
    std::chrono::nanoseconds kill_grace{0};
    std::string task;
  };
  // A worker sent SIGTERM, to be sent SIGKILL at `at` (kill_grace).
  struct PendingKill {
    UniqueFd pidfd;
    Clock::time_point at;
  };

  WorkerSlot& slot(std::uint32_t index) const;
  Doorbells& doorbells() const;
  // Puts on the queues (a task may wake a sleeping worker).
  void post_task(std::string_view message);
  void post_result(std::string_view message);
  // Wakes workers sleeping on the role (`all`, or one).
  void ring_role(bool all) noexcept;
  // What a worker runs to take its next task (worker_main.cc).
  void take_task(std::string& message, bool& have_role,
                 const std::function<void(std::string_view)>& claim);
  void start_zygote();
  void start_zygote_by_name(UniqueFd commands);  // spawn or forkserver (zygote.cc)
  void wait_for_zygote() noexcept;
  void send_to_zygote(char command, std::uint32_t slot) noexcept;
  // What the collector (the thread, or collect_until's caller) keeps between messages.
  struct Collecting {
    std::string message;
    // The rest of what the last get took (get_views: several small messages for one hold of the
    // queue's lock, as the workers' results queue up while this thread handles one), handled in
    // order before the queue is asked again. Small, so the buffers never hold much memory.
    static constexpr std::size_t kBatch = 16;
    static constexpr std::size_t kBatchItemBytes = 16 << 10;
    std::vector<std::string> batch;
    std::size_t batch_taken = 0;
    std::size_t batch_handled = 0;
    LargeBytes remote_results;
    Clock::time_point next_look = Clock::time_point::min();  // when watch() looks again
    bool streaming = false;  // the last message was a chunk's results
    bool ended = false;      // told to stop, or the pool closed and its last worker left
  };
  void collect();  // the collector thread
  // Whether a message is waiting: in the batch taken, or by the result queue's count read
  // without its lock (a hint).
  [[nodiscard]] bool results_pending() const noexcept;
  // Looks at timed tasks when it is time; returns the deadline for the wait for a message.
  Deadline look_at_timed();
  // The next message (the batch's next, or collecting_.message); null when `until` passed
  // first.
  const std::string* take_result(const Deadline& until);
  void on_collected(const std::string& message);
  void on_results(std::string_view message);
  void on_need_inline(const PackedChunk& chunk);
  void on_packed_results(WireReader& reader, LargeBytes& buffer);
  // Both return whether the pool is closed and no worker is left (the collector's end).
  bool on_worker_died(std::uint32_t slot, pid_t pid, int wait_status);
  bool on_worker_not_started(int error);
  void on_initializer_failed(std::string_view message);
  // Takes the chunk out of its job's outstanding set; returns the job if it was still there
  // (each chunk is delivered or failed exactly once).
  std::shared_ptr<Job> claim_chunk(std::uint64_t job, std::uint32_t chunk);
  void fail_everything(const std::exception_ptr& error);
  void stop_collector() noexcept;
  // ---- timeouts and cancels ----
  [[nodiscard]] SlotView read_slot(std::uint32_t index) const;
  // Whether slot `index` still runs (job, chunk) in process pid.
  [[nodiscard]] bool slot_runs(std::uint32_t index, pid_t pid, std::uint64_t job,
                               std::uint32_t chunk) const;
  // Stops a worker: SIGKILL, or SIGTERM now and SIGKILL after `grace` (by the collector).
  void stop_worker(pid_t pid, std::chrono::nanoseconds grace);
  // Tells the collector to start watching (timed jobs or pending kills), if it does not yet
  // (or `always`: to look again now).
  void wake_watcher(bool always = false) noexcept;
  // The collector's look at timed chunks: times out those past their deadline, sends due
  // SIGKILLs; returns when to look again (never when nothing is timed).
  Deadline watch();
  void time_out(const Expired& expired);
  void on_bounced(std::string_view message);

  PoolConfig config_;
  ByteQueue tasks_;
  ByteQueue results_;
  SharedSegment slots_;
  pid_t creator_ = 0;
  pid_t zygote_ = 0;
  std::optional<Process> zygote_process_;  // a zygote started by spawn or the fork server
  UniqueFd zygote_commands_;
  std::thread collector_;

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  State state_ = State::kRun;
  bool joined_ = false;
  std::string broken_;  // why the pool cannot run tasks (an initializer failed)
  std::uint64_t next_job_ = 1;
  std::unordered_map<std::uint64_t, JobEntry> jobs_;
  int live_workers_ = 0;  // workers started and not yet reported dead
  bool zygote_gone_ = false;
  bool zygote_quitting_ = false;  // the collector, at its end, sent the zygote 'Q'

  // Whether workers read batch arguments from this process (process_vm_readv); false once one
  // found it may not.
  std::atomic<bool> remote_args_{true};

  // Timeouts (under mutex_): the jobs with a timeout (pruned by watch()), SIGKILLs due after a
  // grace, and whether the collector looks at them (it then wakes at least every tick).
  std::set<std::uint64_t> timed_jobs_;
  std::vector<PendingKill> pending_kills_;
  std::atomic<bool> watching_{false};  // written under mutex_
  std::vector<Seen> seen_;             // the collector's only
  Collecting collecting_;              // the collector's only
};

}  // namespace mproc::detail
