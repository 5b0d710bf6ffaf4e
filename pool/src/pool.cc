#include "mproc/pool.h"

#include <signal.h>

#include "mproc/process.h"
#include "mproc/start_method.h"
#include "mproc/task.h"

#include "engine.h"

namespace mproc {
namespace {

detail::PoolConfig make_config(PoolOptions options) {
  detail::PoolConfig config;
  config.processes = options.processes.value_or(cpu_count());
  if (config.processes < 1) throw ValueError("Number of processes must be at least 1");
  if (options.maxtasksperchild) {
    if (*options.maxtasksperchild < 1)
      throw ValueError("maxtasksperchild must be a positive int or None");
    config.maxtasksperchild = *options.maxtasksperchild;
  }
  if (options.max_memory_per_child) {
    if (*options.max_memory_per_child == 0)
      throw ValueError("max_memory_per_child must be a positive number of bytes");
    config.max_memory_per_child = *options.max_memory_per_child;
  }
  config.initializer = std::move(options.initializer);
  config.start_method = options.start_method.value_or(default_start_method());
  if (config.start_method != StartMethod::fork && config.initializer &&
      config.initializer.target<TaskCall>() == nullptr) {
    throw ValueError("under the " + std::string(to_string(config.start_method)) +
                     " start method the initializer must be mproc::task_call(f, args...) of a "
                     "registered task (a plain callable cannot be sent to the workers)");
  }
  return config;
}

}  // namespace

Pool::Pool() : Pool(PoolOptions{}) {}

Pool::Pool(int processes) : Pool(PoolOptions{.processes = processes}) {}

Pool::Pool(PoolOptions options)
    : engine_(options.cluster ? options.cluster->make_engine(options)
                              : detail::make_local_engine(std::move(options))) {}

Pool::~Pool() = default;  // the engine's destructor terminates and joins

void Pool::close() { engine_->close(); }
void Pool::terminate() { engine_->terminate(); }
void Pool::terminate_workers() { engine_->terminate_workers(SIGTERM); }
void Pool::kill_workers() { engine_->terminate_workers(SIGKILL); }
void Pool::join() { engine_->join(); }
int Pool::processes() const noexcept { return engine_->processes(); }
std::vector<pid_t> Pool::worker_pids() const { return engine_->worker_pids(); }

namespace detail {

std::shared_ptr<Engine> make_local_engine(PoolOptions options) {
  return std::make_shared<PoolEngine>(make_config(std::move(options)));
}

DrivenEngine make_driven_engine(PoolOptions options) {
  PoolConfig config = make_config(std::move(options));
  config.driven = true;
  auto engine = std::make_shared<PoolEngine>(std::move(config));
  PoolEngine* collector = engine.get();  // lives as long as `engine`, which the caller keeps
  return DrivenEngine{std::move(engine), [collector](const Deadline& until) {
                        return collector->collect_until(until);
                      }};
}

std::size_t map_chunksize(const std::optional<std::size_t>& chunksize,
                          const std::optional<std::chrono::nanoseconds>& timeout, std::size_t items,
                          std::size_t workers) {
  std::size_t size = chunksize ? *chunksize : timeout ? 1 : default_chunksize(items, workers);
  if (size == 0) throw ValueError("chunksize must be at least 1");
  return size;
}

std::vector<std::uint32_t> chunk_starts(std::size_t items, std::size_t chunksize) {
  std::vector<std::uint32_t> starts((items + chunksize - 1) / chunksize);
  for (std::size_t chunk = 0; chunk < starts.size(); ++chunk)
    starts[chunk] = static_cast<std::uint32_t>(chunk * chunksize);
  return starts;
}

}  // namespace detail
}  // namespace mproc
