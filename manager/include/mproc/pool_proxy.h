// mproc/pool_proxy.h
//
// `PoolProxy`: a process pool that lives in a manager's server (Python's `manager.Pool(4)`), so
// that any process holding the proxy (a child, a remote client) can submit work to the same
// workers.
//
//   int square(int x) { return x * x; }
//   MPROC_TASK(square);
//
//   mproc::Manager manager;
//   mproc::PoolProxy pool = manager.Pool(4);
//   mproc::Process child([pool] {
//     int v = pool.apply(square, 7);                          // 49
//     std::vector<int> all = pool.map(square, std::vector{1, 2, 3});
//     auto r = pool.apply_async(square, 8);                   // AsyncResultProxy<int>
//     int w = r.get(std::chrono::seconds(5));                 // 64
//   });
//   child.start(); child.join();
//   pool.close(); pool.join();
//
// Tasks travel by registered name, as with mproc::Pool (MPROC_TASK; NotRegisteredError here for
// a callable that is not registered): the caller encodes the call, the server hands the bytes to
// a worker and the encoded result back, so the server needs none of the task's types. A task's
// exception is rethrown here as itself when it is a standard or registered type (MPROC_EXCEPTION),
// else as RemoteError, as with any proxy call.
//
// `apply_async`, `map_async` and `starmap_async` return proxies to a result object in the server
// (Python's AsyncResult through a manager), so they can be passed to another process too; the
// result keeps its pool alive while it exists.
//
// Python differences: `with pool:` is `auto scope = pool.scope();` (terminate() when `scope`
// goes, as leaving the block does). No callbacks (they would run in the server). `imap` is not
// offered: use map_async. The pool's workers are forked by the server, so they see the server's
// memory, not the caller's: only the arguments travel.
//
// Errors: ValueError from manager.Pool() on a manager with the text serializer (tasks travel in
// the binary task codec); ValueError after close()/terminate() (and join() before them);
// TimeoutError from a result's get(timeout); ProcessError for calls pending when the pool is
// terminated or the manager shut down; the errors of every proxy call (proxy.h). Thread safety,
// fork safety, lifetime: those of BaseProxy (proxy.h); the server runs each call on the caller's
// connection thread, and mproc::Pool is thread-safe. Shutting the manager down terminates its
// pools.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <ranges>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "mproc/managed_pool.h"
#include "mproc/proxy.h"
#include "mproc/sync_proxies.h"  // detail::seconds_of
#include "mproc/task.h"

namespace mproc {

namespace detail {

// PoolScope's end: terminate() the pool; a failure (the server is gone) is logged, not
// thrown.
void terminate_pool_quietly(const BaseProxy& pool) noexcept;

// What the result proxies share: wait, ready, successful and the encoded result.
class PoolResultProxyBase : public BaseProxy {
  using M = managed::PoolResult;

 public:
  using managed_type = managed::PoolResult;

  // Waits until the result is ready; never throws the task's exception.
  void wait() const { (void)call_member<&M::wait>("wait", std::nullopt); }
  // The same for at most `timeout`: whether it is ready.
  template <class Rep, class Period>
  bool wait(std::chrono::duration<Rep, Period> timeout) const {
    return call_member<&M::wait>("wait", seconds_of(timeout));
  }
  [[nodiscard]] bool ready() const { return call_member<&M::ready>("ready"); }
  // Whether the call returned without throwing; ValueError while not ready.
  [[nodiscard]] bool successful() const { return call_member<&M::successful>("successful"); }

 protected:
  PoolResultProxyBase() = default;
  explicit PoolResultProxyBase(Token token) : BaseProxy(std::move(token)) {}
  [[nodiscard]] std::string payload(std::optional<double> timeout) const {
    return call_member<&M::get>("get", timeout);
  }
};

}  // namespace detail

// The result of PoolProxy::apply_async: a task's result of type R.
template <class R>
class AsyncResultProxy : public detail::PoolResultProxyBase {
 public:
  AsyncResultProxy() = default;
  explicit AsyncResultProxy(detail::Token token) : PoolResultProxyBase(std::move(token)) {}

  // Waits for the result (woken by the server when it arrives) and returns it, or rethrows the
  // task's exception.
  R get() const { return detail::decode_reply<R>(payload(std::nullopt), Serializer::kBinary); }
  // As get(); TimeoutError when `timeout` passes first (the task keeps running).
  template <class Rep, class Period>
  R get(std::chrono::duration<Rep, Period> timeout) const {
    return detail::decode_reply<R>(payload(detail::seconds_of(timeout)), Serializer::kBinary);
  }
};

// The result of PoolProxy::map_async/starmap_async: the results in input order; get() rethrows
// the first error by position once every call has finished.
template <class T>
class MapResultProxy : public detail::PoolResultProxyBase {
 public:
  MapResultProxy() = default;
  explicit MapResultProxy(detail::Token token) : PoolResultProxyBase(std::move(token)) {}

  std::vector<T> get() const { return decode_all(payload(std::nullopt)); }
  template <class Rep, class Period>
  std::vector<T> get(std::chrono::duration<Rep, Period> timeout) const {
    return decode_all(payload(detail::seconds_of(timeout)));
  }

 private:
  static std::vector<T> decode_all(std::string_view bytes) {
    std::vector<std::string> each = decode<std::vector<std::string>>(bytes);
    std::vector<T> out;
    out.reserve(each.size());
    for (const std::string& one : each)
      out.push_back(detail::decode_reply<T>(one, Serializer::kBinary));
    return out;
  }
};

class PoolScope;

// A proxy to a mproc::Pool in a manager's server (Python's PoolProxy).
class PoolProxy : public BaseProxy {
  using M = managed::Pool;

 public:
  using managed_type = managed::Pool;

  PoolProxy() = default;
  explicit PoolProxy(detail::Token token) : BaseProxy(std::move(token)) {}

  // Python's apply(f, args): runs fn(args...) in a worker of the server's pool and returns its
  // result (one request, which blocks until the task is done).
  template <class F, class... Args>
  task_result_t<F> apply(const F& fn, Args&&... args) const {
    std::string encoded;
    const std::string& name =
        detail::encode_task_call(encoded, fn, std::forward<Args>(args)...).name;
    return detail::decode_reply<task_result_t<F>>(call_member<&M::apply>("apply", name, encoded),
                                                  Serializer::kBinary);
  }
  // Python's apply_async: submits and returns at once a proxy to the server-side result.
  template <class F, class... Args>
  [[nodiscard]] AsyncResultProxy<task_result_t<F>> apply_async(const F& fn, Args&&... args) const {
    std::string encoded;
    const std::string& name =
        detail::encode_task_call(encoded, fn, std::forward<Args>(args)...).name;
    return AsyncResultProxy<task_result_t<F>>(make_result(
        "PoolAsyncResult",
        std::tuple<std::uint64_t, std::string, std::string>(key(), name, std::move(encoded))));
  }

  // Python's map(f, iterable, chunksize): fn(x) for every x of `inputs`, results in order. The
  // input is read and encoded here first. A task's exception is rethrown (the first by
  // position) once every call has finished.
  template <class F, std::ranges::input_range Range>
  std::vector<task_result_t<F>> map(const F& fn, Range&& inputs,
                                    std::optional<std::int64_t> chunksize = std::nullopt) const {
    auto [name, calls] = encode_map(fn, std::forward<Range>(inputs));
    return decode_all<task_result_t<F>>(call_member<&M::map>("map", name, calls, chunksize));
  }
  // Python's starmap: fn(a, b, ...) for every tuple (or pair) of `inputs`.
  template <class F, std::ranges::input_range Range>
  std::vector<task_result_t<F>> starmap(
      const F& fn, Range&& inputs, std::optional<std::int64_t> chunksize = std::nullopt) const {
    auto [name, calls] = encode_starmap(fn, std::forward<Range>(inputs));
    return decode_all<task_result_t<F>>(call_member<&M::map>("map", name, calls, chunksize));
  }
  // Python's map_async / starmap_async: proxies to the server-side result.
  template <class F, std::ranges::input_range Range>
  [[nodiscard]] MapResultProxy<task_result_t<F>> map_async(
      const F& fn, Range&& inputs, std::optional<std::int64_t> chunksize = std::nullopt) const {
    auto [name, calls] = encode_map(fn, std::forward<Range>(inputs));
    return map_result<task_result_t<F>>(std::move(name), std::move(calls), chunksize);
  }
  template <class F, std::ranges::input_range Range>
  [[nodiscard]] MapResultProxy<task_result_t<F>> starmap_async(
      const F& fn, Range&& inputs, std::optional<std::int64_t> chunksize = std::nullopt) const {
    auto [name, calls] = encode_starmap(fn, std::forward<Range>(inputs));
    return map_result<task_result_t<F>>(std::move(name), std::move(calls), chunksize);
  }

  // Python's close(): no more submissions; the workers leave once the queued work is done.
  void close() const { call_member<&M::close>("close"); }
  // Python's terminate(): stops the workers now; pending results fail with ProcessError.
  void terminate() const { call_member<&M::terminate>("terminate"); }
  // Python's join(): waits until every worker has left; ValueError before close()/terminate().
  void join() const { call_member<&M::join>("join"); }
  // The number of worker processes.
  [[nodiscard]] std::int64_t processes() const { return call_member<&M::processes>("processes"); }

  // Python's `with pool: ...`: `auto scope = pool.scope();` terminates the pool when `scope`
  // goes (PoolScope).
  [[nodiscard]] PoolScope scope() const;

 private:
  // The server-side key of the pool, asked once per proxy (and its copies).
  [[nodiscard]] std::uint64_t key() const {
    std::uint64_t k = key_->load(std::memory_order_acquire);
    if (k == 0) {
      k = call_member<&M::key>("key");
      key_->store(k, std::memory_order_release);
    }
    return k;
  }

  template <class Tuple>
  [[nodiscard]] detail::Token make_result(std::string_view type_name, const Tuple& args) const {
    return detail::create_object(address(), token().authkey, serializer(), type_name,
                                 detail::encode_args(args, serializer()));
  }

  template <class R>
  [[nodiscard]] MapResultProxy<R> map_result(std::string name, std::vector<std::string> calls,
                                             std::optional<std::int64_t> chunksize) const {
    return MapResultProxy<R>(make_result(
        "PoolMapResult", std::tuple<std::uint64_t, std::string, std::vector<std::string>,
                                    std::optional<std::int64_t>>(key(), std::move(name),
                                                                 std::move(calls), chunksize)));
  }

  template <class F, class Range>
  static std::pair<std::string, std::vector<std::string>> encode_map(const F& fn, Range&& inputs) {
    std::string name = task_name(fn);
    std::vector<std::string> calls;
    for (auto&& item : inputs) {
      calls.emplace_back();
      detail::encode_task_call(calls.back(), fn, std::forward<decltype(item)>(item));
    }
    return {std::move(name), std::move(calls)};
  }

  template <class F, class Range>
  static std::pair<std::string, std::vector<std::string>> encode_starmap(const F& fn,
                                                                         Range&& inputs) {
    std::string name = task_name(fn);
    std::vector<std::string> calls;
    for (auto&& tuple : inputs) {
      calls.emplace_back();
      std::apply(
          [&](auto&&... a) {
            detail::encode_task_call(calls.back(), fn, std::forward<decltype(a)>(a)...);
          },
          std::forward<decltype(tuple)>(tuple));
    }
    return {std::move(name), std::move(calls)};
  }

  template <class R>
  static std::vector<R> decode_all(const std::vector<std::string>& results) {
    std::vector<R> out;
    out.reserve(results.size());
    for (const std::string& one : results)
      out.push_back(detail::decode_reply<R>(one, Serializer::kBinary));
    return out;
  }

  std::shared_ptr<std::atomic<std::uint64_t>> key_ =
      std::make_shared<std::atomic<std::uint64_t>>(0);
};

// Python's `with pool: ...` block: the pool is terminated when this object goes (errors are
// logged, as a destructor does not throw). `scope->apply(...)` reaches the pool.
class [[nodiscard]] PoolScope {
 public:
  explicit PoolScope(PoolProxy pool) : pool_(std::move(pool)) {}
  ~PoolScope() { detail::terminate_pool_quietly(pool_); }
  PoolScope(const PoolScope&) = delete;
  PoolScope& operator=(const PoolScope&) = delete;
  const PoolProxy* operator->() const noexcept { return &pool_; }
  [[nodiscard]] const PoolProxy& get() const noexcept { return pool_; }

 private:
  PoolProxy pool_;
};

inline PoolScope PoolProxy::scope() const { return PoolScope(*this); }

}  // namespace mproc
