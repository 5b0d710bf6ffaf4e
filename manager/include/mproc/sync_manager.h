// mproc/sync_manager.h
//
// `Manager`: a started server with Python's standard shared types (Python's
// `multiprocessing.Manager()`, a started `SyncManager`).
//
//   mproc::Manager manager;
//   auto d = manager.dict();                     // DictProxy<Object, Object>: mixed keys/values
//   d[1] = "1";
//   auto l = manager.list(std::views::iota(0, 10));
//   auto q = manager.Queue<int>();               // QueueProxy<int>
//   auto lock = manager.Lock();
//   mproc::Process p([=] { d["2"] = 2; q.put(5); });   // proxies work in children
//
// `SyncManager` is the same before start(): register your own types on it too, then start().
// The member names are Python's (`dict`, `list`, `set`, `Value`, `Queue`, `Lock`, `Pool`...),
// returning the proxies of container_proxies.h, sync_proxies.h, queue_proxy.h and pool_proxy.h.
// Typed proxies (`dict<std::string, int>()`) convert on the calling side; the server stores
// Objects (object.h), so differently typed proxies may share one object.
#pragma once

#include <cstdint>
#include <optional>
#include <ranges>
#include <utility>
#include <vector>

#include "mproc/container_proxies.h"
#include "mproc/manager.h"
#include "mproc/object.h"
#include "mproc/pool_proxy.h"
#include "mproc/queue_proxy.h"
#include "mproc/sync_proxies.h"

namespace mproc {

class SyncManager : public BaseManager {
 public:
  // Registers the standard types; start() (or connect()) before using them.
  explicit SyncManager(ManagerOptions options = {});

  // ---- containers
  template <class K = Object, class V = Object>
  DictProxy<K, V> dict() {
    return create<DictProxy<K, V>>("dict", Object());
  }
  // A dict with the items of `items` (a map, or a range of pairs).
  template <class K = Object, class V = Object, class Items>
  DictProxy<K, V> dict(const Items& items) {
    return create<DictProxy<K, V>>("dict", Object::from(items));
  }
  template <class T = Object>
  ListProxy<T> list() {
    return create<ListProxy<T>>("list", Object());
  }
  template <class T = Object, class Items>
  ListProxy<T> list(const Items& items) {
    return create<ListProxy<T>>("list", Object::from(items));
  }
  // Python's `manager.Value(typecode, value)`: the type is T.
  template <class T>
  ValueProxy<T> Value(const T& initial) {
    return create<ValueProxy<T>>("Value", Object::from(initial));
  }
  ValueProxy<std::string> Value(const char* initial) { return Value<std::string>(initial); }
  // Python's `manager.Array(typecode, sequence)`: a fixed-length array of T.
  template <class T, class Items>
  ArrayProxy<T> Array(const Items& items) {
    std::vector<T> values(std::ranges::begin(items), std::ranges::end(items));
    return create<ArrayProxy<T>>("Array", Object::from(values));
  }
  template <class T>
  ArrayProxy<T> Array(std::size_t size) {
    return create<ArrayProxy<T>>("Array", Object::from(std::vector<T>(size)));
  }
  template <class T = Object>
  SetProxy<T> set() {
    return create<SetProxy<T>>("set", Object());
  }
  // A set of the items of `items` (a range; a map gives its keys).
  template <class T = Object, class Items>
  SetProxy<T> set(const Items& items) {
    return create<SetProxy<T>>("set", Object::from(items));
  }
  NamespaceProxy Namespace() { return create<NamespaceProxy>("Namespace"); }

  // ---- queues (maxsize <= 0: unbounded)
  template <class T>
  QueueProxy<T> Queue(std::int64_t maxsize = 0) {
    return create<QueueProxy<T>>("Queue", maxsize);
  }
  template <class T>
  QueueProxy<T> JoinableQueue(std::int64_t maxsize = 0) {
    return create<QueueProxy<T>>("JoinableQueue", maxsize);
  }

  // ---- synchronization
  AcquirerProxy Lock() { return create<AcquirerProxy>("Lock"); }
  AcquirerProxy RLock() { return create<AcquirerProxy>("RLock"); }
  AcquirerProxy Semaphore(std::int64_t value = 1) {
    return create<AcquirerProxy>("Semaphore", value);
  }
  AcquirerProxy BoundedSemaphore(std::int64_t value = 1) {
    return create<AcquirerProxy>("BoundedSemaphore", value);
  }
  EventProxy Event() { return create<EventProxy>("Event"); }
  ConditionProxy Condition() { return create<ConditionProxy>("Condition"); }
  BarrierProxy Barrier(std::int64_t parties, std::optional<double> timeout = std::nullopt) {
    return create<BarrierProxy>("Barrier", parties, timeout);
  }

  // ---- a process pool in the server (Python's `manager.Pool(processes, ...,
  // maxtasksperchild)`; pool_proxy.h). nullopt: cpu_count() workers, no task limit.
  PoolProxy Pool(std::optional<std::int64_t> processes = std::nullopt,
                 std::optional<std::int64_t> maxtasksperchild = std::nullopt) {
    return create<PoolProxy>("Pool", processes, maxtasksperchild);
  }
};

// Python's `multiprocessing.Manager()`: a SyncManager, started.
class Manager : public SyncManager {
 public:
  explicit Manager(ManagerOptions options = {});
};

}  // namespace mproc
