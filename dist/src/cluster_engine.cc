#include "cluster_engine.h"

#include <memory>
#include <string>
#include <utility>

#include "mproc/errors.h"

#include "engine_errors.h"
#include "os_error.h"

namespace mproc::dist {

ClusterEngine::ClusterEngine(Hub& hub, int workers)
    : hub_(hub), workers_(workers), owner_(hub.new_owner()) {}

ClusterEngine::~ClusterEngine() {
  try {
    terminate();
    join();
  } catch (const std::exception& e) {
    detail::report_error(std::string("cannot shut the cluster pool down: ") + e.what());
  }
}

void ClusterEngine::check_running() const {
  std::scoped_lock lock(mutex_);
  if (state_ != State::kRun) throw ValueError("Pool not running");
}

std::uint64_t ClusterEngine::open(std::shared_ptr<detail::Job> job,
                                  const detail::JobLimits* limits) {
  if (limits) detail::check_limits(*limits);
  detail::Job& opened = *job;
  std::uint64_t id = 0;
  {
    // Held across the hub's open_job: terminate() either sees the job or comes before it.
    std::scoped_lock lock(mutex_);
    if (state_ != State::kRun) throw ValueError("Pool not running");
    id = hub_.open_job(owner_, std::move(job), limits);
  }
  opened.attach(weak_from_this(), id);
  return id;
}

std::uint64_t ClusterEngine::open_job(std::shared_ptr<detail::Job> job) {
  return open(std::move(job), nullptr);
}

std::uint64_t ClusterEngine::open_job(std::shared_ptr<detail::Job> job,
                                      const detail::JobLimits& limits) {
  return open(std::move(job), &limits);
}

void ClusterEngine::submit_chunk(std::uint64_t job, std::uint32_t chunk, std::string_view message) {
  // Held across the hub's submit: terminate() either fails this chunk with the job's others or
  // comes first, and then the chunk's job is gone and the error says why.
  std::scoped_lock lock(mutex_);
  if (state_ == State::kTerminate) std::rethrow_exception(detail::terminated_error());
  hub_.submit(job, chunk, message);
}

void ClusterEngine::seal_job(std::uint64_t job) noexcept { hub_.seal(job); }

bool ClusterEngine::cancel_job(std::uint64_t job, bool interrupt) {
  return hub_.cancel(job, interrupt);
}

namespace {
class HubHelp : public detail::WaitHelp {
 public:
  explicit HubHelp(Hub& hub) : hub_(hub) { hub_.begin_help(); }
  ~HubHelp() override {
    if (!left_) hub_.end_help(false);
  }
  HubHelp(const HubHelp&) = delete;
  HubHelp& operator=(const HubHelp&) = delete;
  void poll() override { hub_.help(); }
  void leave(bool answered) noexcept override {
    if (std::exchange(left_, true)) return;
    hub_.end_help(answered);
  }

 private:
  Hub& hub_;
  bool left_ = false;
};
}  // namespace

std::unique_ptr<detail::WaitHelp> ClusterEngine::wait_help() {
  return std::make_unique<HubHelp>(hub_);
}

void ClusterEngine::close() {
  std::scoped_lock lock(mutex_);
  if (state_ == State::kRun) state_ = State::kClose;
}

void ClusterEngine::terminate() {
  {
    std::scoped_lock lock(mutex_);
    if (state_ == State::kTerminate || joined_) return;
    state_ = State::kTerminate;
  }
  hub_.drop_owner(owner_, detail::terminated_error(), nullptr);
}

void ClusterEngine::join() {
  State state;
  {
    std::scoped_lock lock(mutex_);
    if (state_ == State::kRun)
      throw ValueError("Pool is still running: close() or terminate() it first");
    if (joined_) return;
    state = state_;
  }
  if (state == State::kClose) hub_.wait_owner_idle(owner_);
  std::scoped_lock lock(mutex_);
  joined_ = true;
}

void ClusterEngine::terminate_workers(int signal) {
  {
    std::scoped_lock lock(mutex_);
    if (state_ == State::kTerminate || joined_) return;
    state_ = State::kTerminate;
  }
  const detail::ForcedShutdownErrors errors = detail::forced_shutdown_errors(signal);
  hub_.drop_owner(owner_, errors.running, errors.not_started);
}

}  // namespace mproc::dist
