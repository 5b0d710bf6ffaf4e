// The machinery behind mproc::Pool: queues, worker slots, the zygote and the collector thread.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "mproc/async_result.h"
#include "mproc/detail/byte_queue.h"
#include "mproc/shm.h"

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

// Counters beside the slots that let waiters spin on a plain load instead of the queue's lock:
// every put on the task queue bumps tasks_posted, every take bumps tasks_taken (under the queue's
// lock, in the claim), and every put on the result queue bumps results_posted. They are only
// hints for spinning (a process killed between a put and its bump leaves a count behind):
// nothing but a short spin depends on them.
struct Doorbells {
  alignas(64) std::atomic<std::uint64_t> tasks_posted{0};
  alignas(64) std::atomic<std::uint64_t> tasks_taken{0};
  alignas(64) std::atomic<std::uint64_t> results_posted{0};
  // The "spinner" role among idle workers (worker_main.cc): one worker at a time spins for the
  // next chunk; the others sleep on `role_seq` rather than in the queue, so that a chunk put
  // while one worker is spinning wakes nobody (on a machine with few CPUs, every other waking
  // or spinning worker takes a CPU from the threads doing the round trip).
  enum Role : std::uint32_t { kRoleFree = 0, kRoleSpinning = 1, kRoleBusy = 2, kRoleIdle = 3 };
  alignas(64) std::atomic<std::uint32_t> role{kRoleFree};
  alignas(64) std::atomic<std::uint32_t> role_seq{0};  // futex word: bumped on role changes
  std::atomic<std::uint32_t> role_sleepers{0};
};

struct PoolConfig {
  int processes = 1;
  std::function<void()> initializer;
  int maxtasksperchild = 0;  // 0: unlimited
};

class PoolEngine {
 public:
  explicit PoolEngine(PoolConfig config);
  ~PoolEngine();

  void check_running() const;
  std::uint64_t open_job(std::shared_ptr<Job> job);
  void submit_chunk(std::uint64_t job, std::uint32_t chunk, std::string_view message);
  void seal_job(std::uint64_t job) noexcept;

  void close();
  void terminate();
  void join();

  [[nodiscard]] int processes() const noexcept { return config_.processes; }
  [[nodiscard]] bool remote_args() const noexcept {
    return remote_args_.load(std::memory_order_relaxed);
  }
  [[nodiscard]] std::vector<pid_t> worker_pids() const;

  // What the zygote and the workers run (zygote.cc, worker_main.cc); they never return.
  [[noreturn]] void zygote_main(int command_fd);
  [[noreturn]] void worker_main(std::uint32_t slot);

 private:
  enum class State { kRun, kClose, kTerminate };
  struct JobEntry {
    std::shared_ptr<Job> job;
    std::set<std::uint32_t> outstanding;  // submitted chunks whose results are not in yet
    bool sealed = false;
  };

  WorkerSlot& slot(std::uint32_t index) const;
  Doorbells& doorbells() const;
  // Puts on the queues, ringing the doorbells.
  void post_task(std::string_view message);
  void post_result(std::string_view message);
  // Wakes workers sleeping on the role (`all`, or one).
  void ring_role(bool all) noexcept;
  // What a worker runs to take its next task (worker_main.cc).
  void take_task(std::string& message, bool& have_role,
                 const std::function<void(std::string_view)>& claim);
  void start_zygote();
  void send_to_zygote(char command, std::uint32_t slot) noexcept;
  void collect();  // the collector thread
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

  PoolConfig config_;
  ByteQueue tasks_;
  ByteQueue results_;
  SharedSegment slots_;
  pid_t creator_ = 0;
  pid_t zygote_ = 0;
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
};

}  // namespace mproc::detail
