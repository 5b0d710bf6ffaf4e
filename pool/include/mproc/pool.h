// mproc/pool.h
//
// `Pool` runs registered tasks in a fixed set of worker processes, like Python's
// `multiprocessing.Pool`, and never hangs or loses work when a worker dies.
//
//   int square(int x) { return x * x; }
//   MPROC_TASK(square);
//
//   mproc::Pool pool;                                          // cpu_count() workers
//   int v = pool.apply(square, 7);                             // 49
//   mproc::AsyncResult<int> r = pool.apply_async(square, 7);   // r.get() == 49
//   std::vector<int> all = pool.map(square, std::vector{1, 2, 3});
//   for (int x : pool.imap_unordered(square, std::views::iota(0, 1000))) { ... }
//
// How it works. Calls travel by name (MPROC_TASK, see mproc/task.h) in chunks on one task queue
// in shared memory (the project's JoinableQueue machinery); every worker takes chunks from it,
// runs them, and puts the results on one result queue, which a collector thread in this process
// drains: it fulfils AsyncResults and runs callbacks. `close()` puts one "poison pill" per
// worker on the task queue.
//
// Dead workers. Workers are forked by a small single-threaded "zygote" process that the pool
// starts first, so that a replacement worker is never forked from this (threaded) process; the
// zygote also reaps them. A worker records which chunk it runs in a slot of shared memory in the
// same step that takes the chunk off the queue, so when a worker dies (SIGKILL, abort, segfault,
// `std::exit` inside a task) exactly that chunk's tasks fail, with WorkerLostError naming the pid
// and the signal or exit code; a replacement worker starts, and every other task completes.
// Python's Pool hangs for ever in that case; ProcessPoolExecutor breaks the whole pool.
//
// Timeouts. A task may have its own time limit: `apply_async(fn, args..., TaskOptions{.timeout
// = 2s})`, `map(fn, xs, {.task_timeout = 2s})` (also map_async, starmap, imap, imap_unordered).
// The limit counts from when a worker takes the task (not from submission; a look every few
// milliseconds, at most a twentieth of the timeout, notices it, so a task may overrun by that
// much). A task that runs longer is stopped by killing its worker (SIGKILL, or SIGTERM first
// and SIGKILL `kill_grace` later), fails with TimeoutError naming the task and the limit, and
// the worker is replaced; every other task goes on. That is not the TimeoutError of
// `AsyncResult::get(timeout)`, which only stops waiting and leaves the task running. For map and
// imap the limit applies to each chunk of `chunksize` calls (with a timeout the chunksize is 1
// unless given): a chunk that runs too long fails all its calls. Without a timeout nothing of
// this costs anything (no timer, no extra system call per task).
//
// Cancelling. `AsyncResult::cancel()` drops a task that is still queued (no worker runs it);
// `cancel({.interrupt = true})` also stops a running one as a timeout does. `get()` then throws
// CancelledError. `terminate_workers()` / `kill_workers()` stop the whole pool as Python 3.14's
// ProcessPoolExecutor does. mproc::wait and mproc::as_completed (async_result.h) wait on several
// results as concurrent.futures' do.
//
// Signals. Workers ignore SIGINT: a Ctrl-C in a terminal (sent to the whole process group)
// reaches this process only, where it does what the program makes it do; the pool's destructor
// then stops the workers.
//
// Thread safety: every member function may be called from several threads at once. Fork safety:
// a pool belongs to the process that created it; a forked child must not use it. Lifetime: the
// destructor does what leaving Python's `with Pool() as p:` block does — `terminate()`: workers
// are killed at once, even if they are stuck in an endless loop, and every result still pending
// fails with ProcessError("the pool was terminated ..."); it never hangs. For a graceful end,
// call `close()` then `join()` first, which waits until all submitted work is done.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <ranges>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "mproc/async_result.h"
#include "mproc/deadline.h"
#include "mproc/envelope.h"
#include "mproc/errors.h"
#include "mproc/process.h"
#include "mproc/task.h"

namespace mproc {

namespace detail {
class Cluster;
}  // namespace detail

// Python's Pool(processes, initializer, initargs, maxtasksperchild).
struct PoolOptions {
  // Number of workers; default cpu_count(). Must be at least 1 (ValueError otherwise).
  std::optional<int> processes{};
  // Runs once at the start of every worker, replacements included (bind its arguments in: this
  // is Python's initializer + initargs). If it throws, the pool is broken: every pending and
  // later task fails with ProcessError naming the initializer's error.
  std::function<void()> initializer{};
  // A worker leaves after this many chunks and a fresh one replaces it (at least 1).
  std::optional<int> maxtasksperchild{};
  // A worker whose resident memory (RSS, bytes) is above this after a chunk leaves and a fresh
  // one replaces it, as with maxtasksperchild: for task code that leaks. Read from
  // /proc/self/statm after every chunk, only when set (ValueError for 0).
  std::optional<std::size_t> max_memory_per_child{};
  // How the workers start (start_method.h); unset: the default context's. Under forkserver and
  // spawn the pool's zygote (the process that forks every worker) is started that way, from a
  // single-threaded process, so no worker is a copy of this (maybe threaded) one; tasks and
  // their arguments travel by name, as they always do; the initializer must be a
  // mproc::task_call.
  std::optional<StartMethod> start_method{};
  // Runs the pool's tasks on the workers of a cluster instead of this machine's
  // (`mproc::mpi_cluster()`, mproc/dist.h); unset: a local pool.
  std::shared_ptr<detail::Cluster> cluster{};
};

// A task's own limits (see "Timeouts" above): the last argument of apply_async,
//   pool.apply_async(fn, 1, 2, mproc::TaskOptions{.timeout = 2s});
struct TaskOptions {
  // Unset: no limit. A task still running this long after a worker took it is stopped.
  std::optional<std::chrono::nanoseconds> timeout{};
  // Zero: the worker is killed with SIGKILL at once. Otherwise SIGTERM first (the task may catch
  // it to clean up) and SIGKILL this much later if the worker is still there. Also used by
  // cancel({.interrupt = true}).
  std::chrono::nanoseconds kill_grace{0};
};

// Python's map(..., chunksize): the number of items per task message. Unset: as Python computes
// it for map (len / (4 * workers), rounded up) and 1 for imap/imap_unordered.
//
// Every options struct of mproc gives each member a default initializer, so that designated
// initializers naming only some members compile cleanly under -Wextra.
struct MapOptions {
  std::optional<std::size_t> chunksize{};
  // imap/imap_unordered: at most this many chunks submitted and not yet consumed (Python 3.14's
  // `buffersize`); later chunks are taken from the input as results are consumed, so an endless
  // range works in bounded memory. Unset: the whole input is submitted at once.
  std::optional<std::size_t> buffersize{};
  // Draw a progress bar (done/total, rate, ETA) on stderr while results come in — only when
  // stderr is a terminal. imap over a range without a known size shows a count instead.
  bool progress = false;
  // Each chunk's time limit and kill grace, as TaskOptions (see "Timeouts" above).
  std::optional<std::chrono::nanoseconds> task_timeout{};
  std::chrono::nanoseconds kill_grace{0};
};

template <class R>
struct ApplyOptions {
  // Runs in the pool's collector thread with the result, once, in completion order.
  typename detail::SuccessCallback<R>::type callback{};
  // Runs in the collector thread with the task's exception, once.
  std::function<void(std::exception_ptr)> error_callback{};
  // As TaskOptions.
  std::optional<std::chrono::nanoseconds> timeout{};
  std::chrono::nanoseconds kill_grace{0};
};

// map_async/starmap_async: MapOptions plus Python's callback (the whole result list, once) and
// error_callback (the first exception by position, once), both run in the collector thread.
template <class R>
struct MapAsyncOptions {
  std::optional<std::size_t> chunksize{};
  bool progress = false;  // as MapOptions::progress
  std::function<void(const std::vector<R>&)> callback{};
  std::function<void(std::exception_ptr)> error_callback{};
  // As MapOptions.
  std::optional<std::chrono::nanoseconds> task_timeout{};
  std::chrono::nanoseconds kill_grace{0};
};

namespace detail {

// Builds one task message: a chunk of calls of one task. Format (internal):
//   'T' u64 job  u32 chunk  u32 name_size name  u32 count  { u64 size  args }*count
class ChunkWriter {
 public:
  void begin(std::uint64_t job, std::uint32_t chunk, std::string_view name);
  template <class Append>
  void add(Append&& append_args) {
    std::size_t at = buffer_.size();
    put_u64(buffer_, 0);
    append_args(buffer_);
    patch_u64(buffer_, at, buffer_.size() - at - 8);
    ++count_;
  }
  // A whole chunk in the batch form ('B': `count` arguments of `arg_size` raw bytes, see
  // task.h's BatchInvoker), valid until the next begin or packed.
  [[nodiscard]] std::string_view packed(std::uint64_t job, std::uint32_t chunk,
                                        std::string_view name, const void* args,
                                        std::uint32_t count, std::uint32_t arg_size);
  // The same chunk by reference: the worker reads the arguments from this process's memory
  // (process_vm_readv), so they never pass through shared memory.
  [[nodiscard]] std::string_view packed_remote(std::uint64_t job, std::uint32_t chunk,
                                               std::string_view name, const void* args,
                                               std::uint32_t count, std::uint32_t arg_size);
  [[nodiscard]] std::uint32_t count() const noexcept { return count_; }
  // The finished message (valid until the next begin).
  [[nodiscard]] std::string_view finish();

 private:
  std::string buffer_;
  std::size_t count_at_ = 0;
  std::uint32_t count_ = 0;
};

// Whether map(fn, range of Item) can send its calls in the batch form: fn is a function whose
// parameter and result travel as raw bytes (task.h's BatchInvoker), and an Item converts to it.
template <class F, class Item>
constexpr bool map_in_batches() {
  if constexpr (!(std::is_function_v<F> || FunctionPointer<F>)) {
    return false;
  } else if constexpr (!has_batch_form<std::decay_t<F>>()) {
    return false;
  } else {
    return std::is_constructible_v<BatchArg<std::decay_t<F>>, Item>;
  }
}

// Python's default chunksize for map: ceil(len / (4 * workers)).
[[nodiscard]] std::size_t default_chunksize(std::size_t items, std::size_t workers) noexcept;

// A job's limits (TaskOptions), and its task's name for the TimeoutError message.
struct JobLimits {
  std::optional<std::chrono::nanoseconds> timeout{};
  std::chrono::nanoseconds kill_grace{0};
  std::string_view task{};
};

// A map's chunksize: as given, else 1 with a per-task timeout, else Python's default.
[[nodiscard]] std::size_t map_chunksize(const std::optional<std::size_t>& chunksize,
                                        const std::optional<std::chrono::nanoseconds>& timeout,
                                        std::size_t items, std::size_t workers);

// Where each chunk of a map over `items` starts: chunk k at k * chunksize. Sized once, not grown:
// a map of 200,000 chunks would otherwise copy it into fresh pages at every doubling.
[[nodiscard]] std::vector<std::uint32_t> chunk_starts(std::size_t items, std::size_t chunksize);

// Whether the last of Args is a TaskOptions (apply_async's limits, not an argument of fn).
template <class... Args>
constexpr bool last_is_task_options() {
  if constexpr (sizeof...(Args) == 0) {
    return false;
  } else {
    using Last = std::tuple_element_t<sizeof...(Args) - 1, std::tuple<Args...>>;
    return std::is_same_v<std::remove_cvref_t<Last>, TaskOptions>;
  }
}

// What runs a Pool's chunks: this machine's worker processes (pool/src/engine.h) or a cluster's
// (mproc/dist.h). Chunks are ChunkWriter's messages; results go to the Job given to open_job,
// each chunk delivered or failed exactly once. open_job, submit_chunk and check_running throw
// ValueError once the pool is closed or terminated (and for a timeout or grace below zero).
// Thread safety: every member may be called from several threads.
class Engine : public JobControl {
 public:
  virtual void check_running() const = 0;
  [[nodiscard]] virtual int processes() const noexcept = 0;
  virtual std::uint64_t open_job(std::shared_ptr<Job> job) = 0;
  virtual std::uint64_t open_job(std::shared_ptr<Job> job, const JobLimits& limits) = 0;
  virtual void submit_chunk(std::uint64_t job, std::uint32_t chunk, std::string_view message) = 0;
  // Whether workers can read a batch chunk's arguments from this process (packed_remote).
  [[nodiscard]] virtual bool remote_args() const noexcept = 0;
  // No more chunks for `job`: the engine forgets it once every chunk is in.
  virtual void seal_job(std::uint64_t job) noexcept = 0;
  virtual void close() = 0;
  virtual void terminate() = 0;
  virtual void join() = 0;
  // Pool::terminate_workers (SIGTERM) and kill_workers (SIGKILL).
  virtual void terminate_workers(int signal) = 0;
  [[nodiscard]] virtual std::vector<pid_t> worker_pids() const = 0;
};

// Where PoolOptions::cluster sends a pool: makes the engine for Pool(options).
class Cluster {
 public:
  virtual ~Cluster() = default;
  [[nodiscard]] virtual std::shared_ptr<Engine> make_engine(const PoolOptions& options) = 0;
};

// This machine's engine for `options` (ValueError for bad options); what Pool uses without a
// cluster.
[[nodiscard]] std::shared_ptr<Engine> make_local_engine(PoolOptions options);

// This machine's engine without a collector thread of its own, for a thread that serves
// something else as well (mproc::dist's node agent, which polls MPI): it takes the workers'
// results itself with `collect`, between its other work.
struct DrivenEngine {
  std::shared_ptr<Engine> engine;
  // Handles the messages the workers sent, waiting until `until` for the first (an expired
  // deadline: only a look, which costs no lock when there is nothing); returns how many.
  std::function<std::size_t(const Deadline& until)> collect;
};
[[nodiscard]] DrivenEngine make_driven_engine(PoolOptions options);

}  // namespace detail

class Pool {
 public:
  Pool();
  // Pool(processes): ValueError when processes < 1.
  explicit Pool(int processes);
  explicit Pool(PoolOptions options);
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // ---- one call ----

  // Python's apply_async(f, args): submits fn(args...) and returns at once. `fn` is a function
  // or callable object registered with MPROC_TASK (NotRegisteredError here otherwise, saying what
  // to add); arguments are serialized now. ValueError after close() or terminate().
  // A TaskOptions as the last argument sets the task's timeout (it is not passed to fn):
  //   pool.apply_async(fn, 7, mproc::TaskOptions{.timeout = 2s});
  template <class F, class... Args>
  AsyncResult<task_result_t<F>> apply_async(const F& fn, Args&&... args) {
    if constexpr (detail::last_is_task_options<Args...>()) {
      return apply_async_split(fn, std::forward_as_tuple(std::forward<Args>(args)...),
                               std::make_index_sequence<sizeof...(Args) - 1>{});
    } else {
      return apply_async_with(fn, ApplyOptions<task_result_t<F>>{}, std::forward<Args>(args)...);
    }
  }
  // apply_async(f, args, callback=..., error_callback=...):
  //   pool.apply_async(square, std::tuple{7}, {.callback = [](const int& v) { ... }});
  template <class F, class... Args>
  AsyncResult<task_result_t<F>> apply_async(const F& fn, std::tuple<Args...> args,
                                            ApplyOptions<task_result_t<F>> options) {
    return std::apply(
        [&](auto&&... a) {
          return apply_async_with(fn, std::move(options), std::forward<decltype(a)>(a)...);
        },
        std::move(args));
  }
  // Python's apply: apply_async(...).get().
  template <class F, class... Args>
  task_result_t<F> apply(const F& fn, Args&&... args) {
    return apply_async(fn, std::forward<Args>(args)...).get();
  }

  // ---- many calls ----

  // Python's map: fn(x) for every x of `inputs` (any input range: a container, a view, a
  // generator), results in input order. The input is read completely first; an exception it
  // throws propagates from here and nothing is submitted. A task's exception is rethrown after
  // every task has finished (the first by position), as Python does.
  template <class F, std::ranges::input_range Range>
  std::vector<task_result_t<F>> map(const F& fn, Range&& inputs, MapOptions options = {}) {
    return map_async(fn, std::forward<Range>(inputs),
                     {.chunksize = options.chunksize,
                      .progress = options.progress,
                      .task_timeout = options.task_timeout,
                      .kill_grace = options.kill_grace})
        .take();
  }
  template <class F, std::ranges::input_range Range>
  AsyncResult<std::vector<task_result_t<F>>> map_async(
      const F& fn, Range&& inputs, MapAsyncOptions<task_result_t<F>> options = {}) {
    if constexpr (detail::map_in_batches<F, std::ranges::range_reference_t<Range>>()) {
      return map_packed(fn, std::forward<Range>(inputs), std::move(options));
    }
    return map_impl(fn, std::forward<Range>(inputs), std::move(options),
                    [&fn](std::string& out, auto&& item) {
                      detail::encode_task_call(out, fn, std::forward<decltype(item)>(item));
                    });
  }
  // Python's starmap: fn(a, b, ...) for every tuple (or pair) of `inputs`.
  template <class F, std::ranges::input_range Range>
  std::vector<task_result_t<F>> starmap(const F& fn, Range&& inputs, MapOptions options = {}) {
    return starmap_async(fn, std::forward<Range>(inputs),
                         {.chunksize = options.chunksize,
                          .progress = options.progress,
                          .task_timeout = options.task_timeout,
                          .kill_grace = options.kill_grace})
        .take();
  }
  template <class F, std::ranges::input_range Range>
  AsyncResult<std::vector<task_result_t<F>>> starmap_async(
      const F& fn, Range&& inputs, MapAsyncOptions<task_result_t<F>> options = {}) {
    return map_impl(fn, std::forward<Range>(inputs), std::move(options),
                    [&fn](std::string& out, auto&& tuple) {
                      std::apply(
                          [&](auto&&... a) {
                            detail::encode_task_call(out, fn, std::forward<decltype(a)>(a)...);
                          },
                          std::forward<decltype(tuple)>(tuple));
                    });
  }

  // Python's imap: results one by one, in input order, as they come (see IMapIterator).
  // `inputs` is read as chunks are submitted; with `buffersize` set, lazily, so it may be
  // endless. The range (and what it refers to) must outlive the iteration when buffersize is set.
  template <class F, std::ranges::input_range Range>
  IMapIterator<task_result_t<F>> imap(const F& fn, Range&& inputs, MapOptions options = {}) {
    return imap_impl(fn, std::forward<Range>(inputs), options, true);
  }
  // Python's imap_unordered: as imap, in completion order.
  template <class F, std::ranges::input_range Range>
  IMapIterator<task_result_t<F>> imap_unordered(const F& fn, Range&& inputs,
                                                MapOptions options = {}) {
    return imap_impl(fn, std::forward<Range>(inputs), options, false);
  }

  // ---- life cycle ----

  // No more submissions (ValueError from now on); workers leave once the queued work is done.
  void close();
  // Stops the workers now (SIGKILL; nothing they run is waited for); pending results fail with
  // ProcessError. Never hangs.
  void terminate();
  // Python 3.14's ProcessPoolExecutor.terminate_workers() / kill_workers(): no more
  // submissions (ValueError), every live worker gets SIGTERM / SIGKILL and is not replaced;
  // results of tasks still queued are cancelled (CancelledError, cancelled() true), those of
  // running tasks fail with ProcessError. A no-op on a pool already terminated; call join() (or
  // let the destructor do it) to reap everything.
  void terminate_workers();
  void kill_workers();
  // Waits until every worker has left: after close(), once all submitted work is done; after
  // terminate(), at once. ValueError before close() or terminate(), as Python's.
  void join();

  // ---- inspection ----

  // The number of worker slots (Python: `pool._processes`).
  [[nodiscard]] int processes() const noexcept;
  // The pids of the live workers, in slot order.
  [[nodiscard]] std::vector<pid_t> worker_pids() const;

 private:
  template <class F, class... Args>
  AsyncResult<task_result_t<F>> apply_async_with(const F& fn,
                                                 ApplyOptions<task_result_t<F>> options,
                                                 Args&&... args) {
    using R = task_result_t<F>;
    std::string args_buffer;
    const auto& entry = detail::encode_task_call(args_buffer, fn, std::forward<Args>(args)...);
    auto state = std::allocate_shared<detail::ResultState<R>>(
        detail::ArenaAllocator<detail::ResultState<R>>{}, std::move(options.callback),
        std::move(options.error_callback));
    std::uint64_t job =
        options.timeout || options.kill_grace.count() != 0
            ? engine_->open_job(state, {options.timeout, options.kill_grace, entry.name})
            : engine_->open_job(state);
    detail::ChunkWriter& writer = chunk_writer();
    writer.begin(job, 0, entry.name);
    writer.add([&](std::string& out) { out += args_buffer; });
    engine_->submit_chunk(job, 0, writer.finish());
    engine_->seal_job(job);
    return AsyncResult<R>(std::move(state));
  }

  template <class F, class Tuple, std::size_t... I>
  AsyncResult<task_result_t<F>> apply_async_split(const F& fn, Tuple&& all,
                                                  std::index_sequence<I...>) {
    const TaskOptions& limits = std::get<sizeof...(I)>(all);
    ApplyOptions<task_result_t<F>> options{};
    options.timeout = limits.timeout;
    options.kill_grace = limits.kill_grace;
    return apply_async_with(
        fn, std::move(options),
        std::forward<std::tuple_element_t<I, std::remove_cvref_t<Tuple>>>(std::get<I>(all))...);
  }

  // open_job, with the map's limits when it has any.
  template <class R>
  std::uint64_t open_map_job(std::shared_ptr<detail::Job> state, const MapAsyncOptions<R>& options,
                             std::string_view task) {
    if (!options.task_timeout && options.kill_grace.count() == 0)
      return engine_->open_job(std::move(state));
    return engine_->open_job(std::move(state), {options.task_timeout, options.kill_grace, task});
  }

  // A map job's state over `items` inputs in chunks of `chunksize` (chunk k starts at
  // k * chunksize), and how many chunks that is.
  template <class R>
  std::pair<std::shared_ptr<detail::MapState<R>>, std::uint32_t> make_map_state(
      std::size_t items, std::size_t chunksize, MapAsyncOptions<R>& options) {
    std::vector<std::uint32_t> starts = detail::chunk_starts(items, chunksize);
    const auto chunks = static_cast<std::uint32_t>(starts.size());
    auto state = std::make_shared<detail::MapState<R>>(
        std::move(starts), items, std::move(options.callback), std::move(options.error_callback),
        options.progress ? detail::ProgressBar::for_fd(2, items) : nullptr);
    return {std::move(state), chunks};
  }

  template <class F, class Range, class Encode>
  AsyncResult<std::vector<task_result_t<F>>> map_impl(const F& fn, Range&& inputs,
                                                      MapAsyncOptions<task_result_t<F>> options,
                                                      Encode&& encode) {
    using R = task_result_t<F>;
    engine_->check_running();
    const std::string& name = task_name(fn);
    // Read (and encode) the whole input first: its exceptions surface here, before anything
    // is submitted, and the default chunksize needs its length.
    std::vector<std::string> encoded;
    if constexpr (std::ranges::sized_range<Range>) encoded.reserve(std::ranges::size(inputs));
    for (auto&& item : inputs) {
      encoded.emplace_back();
      encode(encoded.back(), std::forward<decltype(item)>(item));
    }
    std::size_t chunksize =
        detail::map_chunksize(options.chunksize, options.task_timeout, encoded.size(),
                              static_cast<std::size_t>(processes()));
    auto [state, chunks] = make_map_state(encoded.size(), chunksize, options);
    std::shared_ptr<detail::ResultState<std::vector<R>>> result(state, &state->result());
    if (chunks == 0) return AsyncResult<std::vector<R>>(std::move(result));
    std::uint64_t job = open_map_job(state, options, name);
    detail::ChunkWriter& writer = chunk_writer();
    for (std::uint32_t chunk = 0; chunk < chunks; ++chunk) {
      writer.begin(job, chunk, name);
      const std::size_t start = std::size_t{chunk} * chunksize;
      const std::size_t end = std::min(encoded.size(), start + chunksize);
      for (std::size_t i = start; i < end; ++i)
        writer.add([&](std::string& out) { out += encoded[i]; });
      engine_->submit_chunk(job, chunk, writer.finish());
    }
    engine_->seal_job(job);
    return AsyncResult<std::vector<R>>(std::move(result));
  }

  // map_impl for a task with a batch form: the arguments are converted into one array and each
  // chunk is a slice of it; the worker runs a chunk with one lookup of the task and sends the
  // results back as one array.
  template <class F, class Range>
  AsyncResult<std::vector<task_result_t<F>>> map_packed(const F& fn, Range&& inputs,
                                                        MapAsyncOptions<task_result_t<F>> options) {
    using R = task_result_t<F>;
    using P = detail::BatchArg<std::decay_t<F>>;
    engine_->check_running();
    const detail::TaskEntry& entry = detail::entry_of(detail::task_key_of(fn));
    auto kept = std::make_shared<std::vector<P, detail::LargeAllocator<P>>>();
    auto& args = *kept;
    if constexpr (std::ranges::sized_range<Range>) args.reserve(std::ranges::size(inputs));
    for (auto&& item : inputs) args.push_back(P(std::forward<decltype(item)>(item)));
    std::size_t chunksize =
        detail::map_chunksize(options.chunksize, options.task_timeout, args.size(),
                              static_cast<std::size_t>(processes()));
    auto [state, chunks] = make_map_state(args.size(), chunksize, options);
    std::shared_ptr<detail::ResultState<std::vector<R>>> result(state, &state->result());
    if (chunks == 0) return AsyncResult<std::vector<R>>(std::move(result));
    state->keep_alive(kept);
    std::uint64_t job = open_map_job(state, options, entry.name);
    detail::ChunkWriter& writer = chunk_writer();
    const bool remote = engine_->remote_args();
    for (std::uint32_t chunk = 0; chunk < chunks; ++chunk) {
      const std::size_t start = std::size_t{chunk} * chunksize;
      const std::size_t end = std::min(args.size(), start + chunksize);
      const P* first = args.data() + start;
      auto count = static_cast<std::uint32_t>(end - start);
      // Small chunks go inline: a system call in the worker costs more than they do.
      engine_->submit_chunk(
          job, chunk,
          remote && count * sizeof(P) >= detail::kLargeAllocation / 4
              ? writer.packed_remote(job, chunk, entry.name, first, count, sizeof(P))
              : writer.packed(job, chunk, entry.name, first, count, sizeof(P)));
    }
    engine_->seal_job(job);
    return AsyncResult<std::vector<R>>(std::move(result));
  }

  // The feeding side of an imap: takes chunks from the input as asked. It holds the engine
  // weakly: an iterator that outlives its pool just ends.
  template <class F, class Range>
  struct IMapFeeder {
    std::weak_ptr<detail::Engine> engine;
    const F* fn;
    std::string name;
    Range range;
    std::ranges::iterator_t<Range> it;
    std::size_t chunksize;
    std::uint64_t job;
    std::uint32_t next_chunk = 0;
    std::size_t position = 0;
    bool done = false;
  };

  template <class F, class Range>
  IMapIterator<task_result_t<F>> imap_impl(const F& fn, Range&& inputs, MapOptions options,
                                           bool ordered) {
    using R = task_result_t<F>;
    engine_->check_running();
    std::size_t chunksize = options.chunksize.value_or(1);
    if (chunksize == 0) throw ValueError("chunksize must be at least 1");
    std::size_t total = 0;
    if constexpr (std::ranges::sized_range<Range>) total = std::ranges::size(inputs);
    auto state = std::make_shared<detail::IMapState<R>>(
        ordered, options.progress ? detail::ProgressBar::for_fd(2, total) : nullptr);
    std::uint64_t job =
        options.task_timeout || options.kill_grace.count() != 0
            ? engine_->open_job(state, {options.task_timeout, options.kill_grace, task_name(fn)})
            : engine_->open_job(state);
    using Stored = std::conditional_t<std::is_lvalue_reference_v<Range>,
                                      std::ranges::ref_view<std::remove_reference_t<Range>>,
                                      std::remove_cvref_t<Range>>;
    auto feeder = std::make_shared<IMapFeeder<F, Stored>>(IMapFeeder<F, Stored>{
        engine_, &fn, task_name(fn), Stored(std::forward<Range>(inputs)), {}, chunksize, job});
    feeder->it = std::ranges::begin(feeder->range);
    auto feed_one = [feeder, state]() -> bool {  // false once the input is exhausted
      auto& f = *feeder;
      if (f.done) return false;
      auto engine = f.engine.lock();
      if (!engine) {
        f.done = true;
        state->input_ended(std::make_exception_ptr(
            ProcessError("the pool was destroyed before this imap was consumed")));
        return false;
      }
      detail::ChunkWriter writer;
      std::size_t first = f.position;
      try {
        writer.begin(f.job, f.next_chunk, f.name);
        for (std::size_t i = 0; i < f.chunksize && f.it != std::ranges::end(f.range); ++i, ++f.it) {
          writer.add([&](std::string& out) { detail::encode_task_call(out, *f.fn, *f.it); });
        }
      } catch (...) {
        f.done = true;
        state->input_ended(std::current_exception());
        engine->seal_job(f.job);
        return false;
      }
      if (writer.count() > 0) {
        state->add_chunk(f.next_chunk, first, writer.count());
        f.position += writer.count();
        try {
          engine->submit_chunk(f.job, f.next_chunk, writer.finish());
        } catch (...) {
          // The pool ended under this imap (a cluster pool terminated meanwhile): the chunk
          // fails at its place, and the rest of the input is left unread.
          state->fail(f.next_chunk, std::current_exception());
          f.done = true;
          state->input_ended();
          engine->seal_job(f.job);
          return false;
        }
        ++f.next_chunk;
      }
      if (f.it == std::ranges::end(f.range)) {
        f.done = true;
        state->input_ended();
        engine->seal_job(f.job);
        return false;
      }
      return true;
    };
    std::function<void()> refill;
    if (options.buffersize) {
      std::size_t limit = std::max<std::size_t>(1, *options.buffersize) * chunksize;
      auto fill = [feed_one, state, limit]() mutable {
        while (state->outstanding() < limit && feed_one()) {
        }
      };
      fill();
      refill = fill;
    } else {
      while (feed_one()) {
      }
    }
    return IMapIterator<R>(std::move(state), std::move(refill));
  }

  static detail::ChunkWriter& chunk_writer() {
    thread_local detail::ChunkWriter writer;  // reused: no allocation per submission
    return writer;
  }

  std::shared_ptr<detail::Engine> engine_;
};

}  // namespace mproc
