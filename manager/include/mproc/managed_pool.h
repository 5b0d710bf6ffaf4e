// mproc/managed_pool.h
//
// The server-side objects behind PoolProxy (pool_proxy.h): a mproc::Pool that lives in a
// manager's server process, and the results of its asynchronous calls. You use them through
// proxies, not directly:
//
//   mproc::Manager manager;
//   mproc::PoolProxy pool = manager.Pool(4);       // a managed::Pool in the server
//
// Python counterpart: the referents of `SyncManager.Pool()` (a `multiprocessing.pool.Pool`) and
// of the `AsyncResult` its `apply_async`/`map_async` return through the manager.
//
// Calls travel as they do to any Pool: by the task's registered name (MPROC_TASK, task.h) with
// arguments encoded by the caller; the server never needs the task's C++ types, it hands the
// name and the bytes to a worker and the encoded result back. So the server finds a task only
// if its program registered it: a server started by `start()` is a fork of the caller (it has
// the caller's registry), a remote server must be the same program.
//
// Why the pool is made on a thread of its own: a pool's helper process (its "zygote") dies when
// the *thread* that forked it ends (PR_SET_PDEATHSIG), and a server's connection threads end
// with their client. So the pool is constructed, and finally terminated and joined, on a
// keeper thread that lives as long as the pool. When the server stops, every pool it holds is
// terminated and joined before the server process exits, so neither workers nor /dev/shm
// segments outlive it.
//
// Thread safety: the server calls every method from several connection threads at once;
// mproc::Pool is thread-safe. Blocking methods (apply, map, join, a result's get/wait) block
// only the connection thread of their caller.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "mproc/proxy.h"

namespace mproc::detail {
class PoolKeeper;
struct PoolResultState;
}  // namespace mproc::detail

namespace mproc::managed {

// A mproc::Pool in the server.
class Pool {
 public:
  // Python's Pool(processes, maxtasksperchild): nullopt for the defaults (cpu_count() workers,
  // no limit). ValueError for processes < 1.
  Pool(std::optional<std::int64_t> processes, std::optional<std::int64_t> maxtasksperchild);
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;
  static std::span<const detail::Method<Pool>> exposed_methods();

  // Runs the task `name` with the encoded arguments `args` in a worker and returns the encoded
  // result; rethrows the task's exception. ValueError after close()/terminate().
  std::string apply(const std::string& name, const std::string& args);
  // The task on each of `args` (encoded calls), results in order; the first error by position
  // is rethrown once every call has finished (Python's map). chunksize as Pool::map's.
  std::vector<std::string> map(const std::string& name, const std::vector<std::string>& args,
                               std::optional<std::int64_t> chunksize);
  // Python's close(), terminate(), join() (join: ValueError before close or terminate).
  void close();
  void terminate();
  void join();
  // The number of workers (Python's `pool._processes`).
  std::int64_t processes() const;
  // What the result factories of this server find the pool by (a server-wide key).
  std::uint64_t key() const;

 private:
  std::shared_ptr<detail::PoolKeeper> keeper_;
};

// The result of an apply_async or map_async of a managed Pool (Python's AsyncResult). Keeps its
// pool alive while it exists, as Python's result holds its pool.
class PoolResult {
 public:
  // The factories behind the "PoolAsyncResult" / "PoolMapResult" types: submit to the pool of
  // `pool_key` (KeyError if that pool is gone). ValueError when the pool is closed.
  static std::shared_ptr<PoolResult> apply_async(std::uint64_t pool_key, std::string name,
                                                 std::string args);
  static std::shared_ptr<PoolResult> map_async(std::uint64_t pool_key, std::string name,
                                               std::vector<std::string> args,
                                               std::optional<std::int64_t> chunksize);
  explicit PoolResult(std::shared_ptr<detail::PoolResultState> state);
  static std::span<const detail::Method<PoolResult>> exposed_methods();

  // The encoded result (for a map: the encoded std::vector of encoded results), or the task's
  // exception; TimeoutError when `timeout` seconds pass first (nullopt: no limit).
  std::string get(std::optional<double> timeout);
  // Whether the result is ready within `timeout` seconds (nullopt: waits until it is).
  bool wait(std::optional<double> timeout);
  bool ready() const;
  // ValueError while not ready, as Python's.
  bool successful() const;

 private:
  std::shared_ptr<detail::PoolResultState> state_;
};

}  // namespace mproc::managed
