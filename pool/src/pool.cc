#include "mproc/pool.h"

#include "mproc/process.h"

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
  config.initializer = std::move(options.initializer);
  return config;
}

}  // namespace

Pool::Pool() : Pool(PoolOptions{}) {}

Pool::Pool(int processes) : Pool(PoolOptions{.processes = processes}) {}

Pool::Pool(PoolOptions options)
    : engine_(std::make_shared<detail::PoolEngine>(make_config(std::move(options)))) {}

Pool::~Pool() = default;  // the engine's destructor terminates and joins

void Pool::close() { engine_->close(); }
void Pool::terminate() { engine_->terminate(); }
void Pool::join() { engine_->join(); }
int Pool::processes() const noexcept { return engine_->processes(); }
std::vector<pid_t> Pool::worker_pids() const { return engine_->worker_pids(); }

}  // namespace mproc
