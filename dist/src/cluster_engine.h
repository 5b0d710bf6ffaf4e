// The engine of a cluster pool on rank 0: the Pool's life cycle (run, close, terminate) over
// the hub's jobs. The hub does the work; this keeps which jobs are this pool's.
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string_view>
#include <vector>

#include "mproc/pool.h"

#include "hub.h"

namespace mproc::dist {

class ClusterEngine : public detail::Engine, public std::enable_shared_from_this<ClusterEngine> {
 public:
  ClusterEngine(Hub& hub, int workers);
  ~ClusterEngine() override;  // terminate, join

  void check_running() const override;
  [[nodiscard]] int processes() const noexcept override { return workers_; }
  std::uint64_t open_job(std::shared_ptr<detail::Job> job) override;
  std::uint64_t open_job(std::shared_ptr<detail::Job> job,
                         const detail::JobLimits& limits) override;
  void submit_chunk(std::uint64_t job, std::uint32_t chunk, std::string_view message) override;
  // Never: process_vm_readv does not cross machines.
  [[nodiscard]] bool remote_args() const noexcept override { return false; }
  void seal_job(std::uint64_t job) noexcept override;
  bool cancel_job(std::uint64_t job, bool interrupt) override;
  // A waiter polls MPI for the hub meanwhile (Hub::help).
  std::unique_ptr<detail::WaitHelp> wait_help() override;
  void close() override;
  void terminate() override;
  void join() override;
  void terminate_workers(int signal) override;
  [[nodiscard]] std::vector<pid_t> worker_pids() const override { return {}; }

 private:
  enum class State { kRun, kClose, kTerminate };
  std::uint64_t open(std::shared_ptr<detail::Job> job, const detail::JobLimits* limits);

  Hub& hub_;
  const int workers_;
  const std::uint64_t owner_;
  mutable std::mutex mutex_;
  State state_ = State::kRun;
  bool joined_ = false;
};

}  // namespace mproc::dist
