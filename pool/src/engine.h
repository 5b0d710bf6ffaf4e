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
  void start_zygote();
  void send_to_zygote(char command, std::uint32_t slot) noexcept;
  void collect();  // the collector thread
  void on_results(std::string_view message);
  void on_worker_died(std::uint32_t slot, pid_t pid, int wait_status);
  void on_worker_not_started(int error);
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
};

}  // namespace mproc::detail
