// mproc/queue_proxy.h
//
// `QueueProxy<T>`: a proxy to a queue that lives in a manager's server (`manager.Queue<T>()`,
// `manager.JoinableQueue<T>()`), Python's proxy of the `queue.Queue` a SyncManager makes.
//
//   mproc::Manager manager;
//   mproc::QueueProxy<std::string> q = manager.Queue<std::string>(2);   // at most 2 items
//   pool.apply_async(producer, q);            // a proxy is a valid Pool task argument
//   q.put("A");                               // blocks while full
//   std::string a = q.get(2s);                // Empty after 2 s
//   q.task_done(); q.join();                  // JoinableQueue's protocol (on either kind)
//
// Unlike `mproc::Queue` (queue.h), which lives in shared memory, this one lives in the server:
// any process that has the proxy can use it (a Pool worker, a process that received it through
// a queue or a pipe, a remote client), at the cost of one request per call. Items are encoded
// here in the manager's serializer (manager_serializer.h; mproc::encode by default) and decoded on
// `get` (SerializationError if the item is not a T); the server stores the bytes, so proxies of
// different item types may share a queue.
//
// Blocking calls block only the calling thread: `put` while the queue is full (woken by a get),
// `get` while it is empty (woken by a put), `join` until every item had its task_done(). The
// timeouts are measured in the server from when the request arrives. `put(item, 0.5)` would be
// `put(item, true)`: it does not compile; write `put(item, true, 0.5)` or `put(item, 500ms)`.
//
// Errors: Full / Empty when a put / get runs out of time (at once for the nowait forms); ValueError
// for a negative timeout and for a task_done() too many; ShutDown after shutdown(); EOFError when
// the server is gone (proxy.h). Thread safety, fork safety, lifetime: as every proxy (proxy.h).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "mproc/deadline.h"
#include "mproc/managed_sync.h"
#include "mproc/proxy.h"
#include "mproc/serialize.h"
#include "mproc/sync_proxies.h"

namespace mproc {

template <class T>
class QueueProxy : public BaseProxy {
 public:
  using managed_type = managed::Queue;
  using value_type = T;

  QueueProxy() = default;
  explicit QueueProxy(detail::Token token) : BaseProxy(std::move(token)) {}

  // Appends `item`; blocks while the queue is full (woken by a get) until the timeout, then
  // throws Full. Python's put(item, block=True, timeout=None): with `block == false` it throws
  // Full at once (the timeout is ignored).
  void put(const T& item, bool block = true, std::optional<double> timeout = std::nullopt) const {
    call_member<&managed::Queue::put>("put", detail::encode_payload(item, serializer()), block,
                                      timeout);
  }
  template <class Rep, class Period>
  void put(const T& item, std::chrono::duration<Rep, Period> timeout) const {
    put(item, true, detail::seconds_of(timeout));
  }
  void put(const T& item, const Deadline& deadline) const {
    put(item, true, detail::seconds_left(deadline));
  }
  void put(const T& item, double) const = delete;
  void put_nowait(const T& item) const { put(item, false); }

  // Removes and returns the oldest item; blocks while the queue is empty (woken by a put) until
  // the timeout, then throws Empty (at once with `block == false`).
  [[nodiscard]] T get(bool block = true, std::optional<double> timeout = std::nullopt) const {
    return detail::decode_payload<T>(call_member<&managed::Queue::get>("get", block, timeout),
                                     serializer());
  }
  template <class Rep, class Period>
  [[nodiscard]] T get(std::chrono::duration<Rep, Period> timeout) const {
    return get(true, detail::seconds_of(timeout));
  }
  [[nodiscard]] T get(const Deadline& deadline) const {
    return get(true, detail::seconds_left(deadline));
  }
  T get(double) const = delete;
  [[nodiscard]] T get_nowait() const { return get(false); }

  // Exact in the server (others may change it right after).
  [[nodiscard]] std::size_t qsize() const {
    return static_cast<std::size_t>(call_member<&managed::Queue::qsize>("qsize"));
  }
  [[nodiscard]] bool empty() const { return call_member<&managed::Queue::empty>("empty"); }
  [[nodiscard]] bool full() const { return call_member<&managed::Queue::full>("full"); }
  // 0 for an unbounded queue.
  [[nodiscard]] std::size_t maxsize() const {
    return static_cast<std::size_t>(call_member<&managed::Queue::maxsize>("maxsize"));
  }

  // Ends one task (an item some process got). Throws ValueError when called more times than
  // items were put.
  void task_done() const { call_member<&managed::Queue::task_done>("task_done"); }
  // Blocks until every item put has had its task_done() (woken by the last one). The timed forms
  // return false when the timeout runs out first (Python's join has none).
  void join() const { (void)join_for(std::nullopt); }
  template <class Rep, class Period>
  [[nodiscard]] bool join(std::chrono::duration<Rep, Period> timeout) const {
    return join_for(detail::seconds_of(timeout));
  }
  [[nodiscard]] bool join(const Deadline& deadline) const {
    return join_for(detail::seconds_left(deadline));
  }

  // Python 3.13's shutdown: puts throw ShutDown from now on, gets once the queue is empty;
  // `immediate` drops the items (counted as done). Wakes every blocked put, get and join.
  void shutdown(bool immediate = false) const {
    call_member<&managed::Queue::shutdown>("shutdown", immediate);
  }
  [[nodiscard]] bool is_shutdown() const {
    return call_member<&managed::Queue::is_shutdown>("is_shutdown");
  }

 private:
  [[nodiscard]] bool join_for(std::optional<double> timeout) const {
    return call_member<&managed::Queue::join>("join", timeout);
  }
};

}  // namespace mproc
