#include "mproc/sync_manager.h"

#include <cstdint>
#include <optional>
#include <utility>

#include "mproc/managed_containers.h"
#include "mproc/managed_pool.h"
#include "mproc/managed_sync.h"

namespace mproc {

SyncManager::SyncManager(ManagerOptions options) : BaseManager(std::move(options)) {
  register_type<managed::Dict, Object>("dict");
  register_type<managed::List, Object>("list");
  register_type<managed::Value, Object>("Value");
  register_type<managed::Array, Object>("Array");
  register_type<managed::Namespace>("Namespace");
  register_type<managed::Set, Object>("set");
  register_type<managed::Queue, std::int64_t>("Queue");
  register_type<managed::Queue, std::int64_t>("JoinableQueue");
  register_type<managed::Lock>("Lock");
  register_type<managed::RLock>("RLock");
  register_type<managed::Semaphore, std::int64_t>("Semaphore");
  register_type<managed::BoundedSemaphore, std::int64_t>("BoundedSemaphore");
  register_type<managed::Event>("Event");
  register_type<managed::Condition>("Condition");
  register_type<managed::Barrier, std::int64_t, std::optional<double>>("Barrier");
  register_type<managed::Pool, std::optional<std::int64_t>, std::optional<std::int64_t>>("Pool");
  // What PoolProxy's apply_async / map_async create (Python's 'AsyncResult', create_method=False).
  register_callable<managed::PoolResult>("PoolAsyncResult", &managed::PoolResult::apply_async);
  register_callable<managed::PoolResult>("PoolMapResult", &managed::PoolResult::map_async);
}

Manager::Manager(ManagerOptions options) : SyncManager(std::move(options)) { start(); }

}  // namespace mproc
