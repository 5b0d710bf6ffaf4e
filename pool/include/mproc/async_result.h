// mproc/async_result.h
//
// What `Pool` hands back for work it runs: `AsyncResult<R>` (Python's `AsyncResult`, also what
// `map_async` returns, with R a std::vector) and `IMapIterator<R>` (what `imap` and
// `imap_unordered` return).
//
//   mproc::AsyncResult<int> r = pool.apply_async(square, 7);
//   r.wait(100ms);                     // false while it runs
//   int v = r.get();                   // 49, or the task's exception rethrown
//
// and, as concurrent.futures does with futures, ways to wait on several results and to cancel:
//
//   auto [done, not_done] = mproc::wait(results, {.return_when = mproc::FIRST_COMPLETED});
//   for (auto& r : mproc::as_completed(results, 10s)) use(r.get());
//   r.cancel();                        // a queued task never runs; get() throws CancelledError
//   r.add_done_callback([](mproc::AsyncResult<int> r) { ... });
//
// Thread safety: every member may be called from several threads. Fork safety: results belong
// to the process that submitted the work; a forked child must not wait on them. Lifetime: a
// result is a handle on state shared with the pool; it stays valid after the pool is gone (a
// result still pending then has failed: see Pool's destructor).
#pragma once

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <ranges>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "mproc/deadline.h"
#include "mproc/envelope.h"
#include "mproc/errors.h"
#include "mproc/log.h"

namespace mproc {

namespace detail {

// Memory for large arrays, in huge pages where the kernel gives them (memory.cc says why).
// allocate_large throws std::bad_alloc; advise_huge_pages asks for huge pages inside an existing
// block not yet touched. large_capacity is what allocate_large(bytes) maps (whole huge pages),
// all of it usable; kHugePageBytes is the unit it maps in.
inline constexpr std::size_t kHugePageBytes = std::size_t{2} << 20;
inline constexpr std::size_t kLargeAllocation = std::size_t{256} << 10;
[[nodiscard]] void* allocate_large(std::size_t bytes);
[[nodiscard]] std::size_t large_capacity(std::size_t bytes) noexcept;
void free_large(void* p, std::size_t bytes) noexcept;
void advise_huge_pages(const void* p, std::size_t bytes) noexcept;

// std::allocator, but large blocks come from allocate_large.
template <class T>
struct LargeAllocator {
  using value_type = T;
  LargeAllocator() = default;
  template <class U>
  explicit LargeAllocator(const LargeAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) {
    if (n * sizeof(T) < kLargeAllocation) return std::allocator<T>().allocate(n);
    return static_cast<T*>(allocate_large(n * sizeof(T)));
  }
  void deallocate(T* p, std::size_t n) noexcept {
    if (n * sizeof(T) < kLargeAllocation) {
      std::allocator<T>().deallocate(p, n);
    } else {
      free_large(p, n * sizeof(T));
    }
  }
  friend bool operator==(const LargeAllocator&, const LargeAllocator&) noexcept { return true; }
};

// Blocks of up to kMaxArenaBlock bytes from the arena of results' states, in slabs of huge
// pages once a program holds many (result_arena.cc says why); what ArenaAllocator takes.
inline constexpr std::size_t kMaxArenaBlock = 512;
[[nodiscard]] void* allocate_arena_block(std::size_t bytes);
void free_arena_block(void* p) noexcept;

// std::allocator, but a single object of up to kMaxArenaBlock bytes (and no stricter alignment
// than operator new's) comes from the arena: what allocate_shared takes for a ResultState.
template <class T>
struct ArenaAllocator {
  using value_type = T;
  ArenaAllocator() = default;
  template <class U>
  explicit ArenaAllocator(const ArenaAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) {
    if (!in_arena(n)) return std::allocator<T>().allocate(n);
    return static_cast<T*>(allocate_arena_block(sizeof(T)));
  }
  void deallocate(T* p, std::size_t n) noexcept {
    if (!in_arena(n)) {
      std::allocator<T>().deallocate(p, n);
    } else {
      free_arena_block(p);
    }
  }
  friend bool operator==(const ArenaAllocator&, const ArenaAllocator&) noexcept { return true; }

 private:
  static constexpr bool in_arena(std::size_t n) noexcept {
    return n == 1 && sizeof(T) <= kMaxArenaBlock && alignof(T) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__;
  }
};

// How long a waiter of the pool looks for its event before it sleeps. Waking a sleeping thread
// costs tens of microseconds on some machines (a futex round trip is ~50 us in a VM), more than
// a whole round trip between awake processes; spinning longer than that gains nothing.
inline constexpr std::chrono::microseconds kSpinBudget{50};

// Bounded spin-before-sleep: looks at done() for up to `budget`, with a pause instruction at
// first and then giving the CPU away (sched_yield) between looks, so that on a busy machine the
// thread being waited for gets to run. Returns done()'s last value; the caller then sleeps.
template <class Done>
bool spin_for(Done&& done, std::chrono::nanoseconds budget) {
  for (int i = 0; i < 64; ++i) {
    if (done()) return true;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  }
  const auto until = std::chrono::steady_clock::now() + budget;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= until) return done();
    ::sched_yield();
  }
  return true;
}

// One item's outcome as a worker sent it back (the payload points into the collector's buffer).
struct ItemResult {
  ResultStatus status = ResultStatus::kOk;
  std::string_view payload;
};

// A chunk's results in the batch form (task.h's BatchInvoker): `count` values of `size` raw
// bytes back to back, except at the positions of `errors` (ascending), which hold a captured
// exception instead.
struct PackedResults {
  std::string_view values;
  std::uint32_t count = 0;
  std::uint32_t size = 0;
  std::vector<std::pair<std::uint32_t, std::string_view>> errors;
};

// A thread that spins waiting for a result doing its pool's polling meanwhile (a cluster pool's
// MPI), instead of leaving it to the pool's own thread: one thread fewer spinning on the round
// trip's path, which on a machine with few CPUs is what a round trip costs.
class WaitHelp {
 public:
  virtual ~WaitHelp() = default;
  // One round of the pool's polling (nothing when another thread is at it).
  virtual void poll() = 0;
  // The wait is over: with its result (`answered`), or it goes to sleep, and the pool's own
  // thread must poll again at once.
  virtual void leave(bool answered) noexcept = 0;
};

// How long a helping waiter spins: as long as the cluster hub's thread spins after its last work,
// so that a result comes in as soon as it would have without the help.
inline constexpr std::chrono::microseconds kHelpedSpinBudget{200};

// What a job's result asks of the pool that runs it (implemented by the pool's engine).
class JobControl {
 public:
  virtual ~JobControl() = default;
  // Cancels the job (see AsyncResult::cancel). Returns whether the job is cancelled now.
  virtual bool cancel_job(std::uint64_t job, bool interrupt) = 0;
  // For a thread about to spin waiting for one of the pool's results; null: no help wanted.
  virtual std::unique_ptr<WaitHelp> wait_help() { return nullptr; }
};

// Wakes the waiters of mproc::wait and mproc::as_completed when one of their results is ready.
struct DoneSignal {
  std::mutex mutex;
  std::condition_variable cv;
  std::uint64_t generation = 0;  // bumped on every notify
  void notify() {
    {
      std::scoped_lock lock(mutex);
      ++generation;
    }
    cv.notify_all();
  }
};

// What the pool's collector thread feeds: the results of one chunk of a job, or its failure
// (a lost worker, a terminated pool, an input range that threw, a timeout, a cancel). Each chunk
// is delivered or failed exactly once.
class Job {
 public:
  virtual ~Job() = default;
  // Called once by the pool when the job is opened: who can cancel it, and its number there.
  virtual void attach(std::weak_ptr<JobControl> /*control*/, std::uint64_t /*id*/) {}
  // Called by the pool just before it fails the job's chunks with CancelledError.
  virtual void mark_cancelled() {}
  virtual void deliver(std::uint32_t chunk, std::span<const ItemResult> items) = 0;
  // The batch form; by default taken item by item (a raw value decodes as itself).
  virtual void deliver_packed(std::uint32_t chunk, const PackedResults& results) {
    std::vector<ItemResult> items(results.count);
    for (std::uint32_t i = 0; i < results.count; ++i)
      items[i].payload = results.values.substr(std::size_t{i} * results.size, results.size);
    for (const auto& [index, payload] : results.errors)
      items.at(index) = ItemResult{ResultStatus::kException, payload};
    deliver(chunk, items);
  }
  // Where the collector may read a chunk of `count` raw results of `size` bytes straight into,
  // before it calls deliver_packed with them there; nullptr for none (the default).
  virtual char* packed_destination(std::uint32_t /*chunk*/, std::uint32_t /*count*/,
                                   std::uint32_t /*size*/) {
    return nullptr;
  }
  virtual void fail(std::uint32_t chunk, std::exception_ptr error) = 0;
  // Whether delivering to it runs a callback given at submission: a cluster pool then delivers
  // on its own thread, never on a waiter that polls for it (WaitHelp). Done-callbacks added
  // later run in whichever thread completes the result, as documented there.
  [[nodiscard]] virtual bool runs_callbacks() const { return true; }
};

// Runs a user callback, logging (not propagating) what it throws: a faulty callback must not
// take the collector thread down.
template <class Fn, class... Args>
void run_callback(const Fn& fn, Args&&... args) noexcept {
  if (!fn) return;
  try {
    fn(std::forward<Args>(args)...);
  } catch (const std::exception& e) {
    get_logger()->error("a pool callback threw: {}", e.what());
  } catch (...) {
    get_logger()->error("a pool callback threw a non-std exception");
  }
}

// The success callback's type: void(const R&), or void() for a void task.
template <class R>
struct SuccessCallback {
  using type = std::function<void(const R&)>;
};
template <>
struct SuccessCallback<void> {
  using type = std::function<void()>;
};

// The `{.progress = true}` bar of map/imap: done/total, rate and ETA on one line of a terminal,
// redrawn at most ten times a second. Thread safety: advance() may be called from any thread.
class ProgressBar {
 public:
  // A bar drawing on `fd`, or null when `fd` is not a terminal (a log file gets no bar).
  [[nodiscard]] static std::shared_ptr<ProgressBar> for_fd(int fd, std::size_t total);
  ProgressBar(int fd, std::size_t total);  // total 0: unknown (an endless imap)
  void advance(std::size_t items);
  // "[###.......] 30/100  30% | 1200/s | ETA 0.1s" (or "30 done | ..." for an unknown total).
  [[nodiscard]] static std::string format(std::size_t done, std::size_t total,
                                          double elapsed_seconds);

 private:
  std::mutex mutex_;
  int fd_;
  std::size_t total_;
  std::size_t done_ = 0;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_{};
};

// Storage for a value that may be void.
template <class R>
struct Slot {
  std::optional<R> value;
};
template <>
struct Slot<void> {
  bool value = false;
};

// The state behind an AsyncResult: set once, by deliver/fail (collector) or by the submitter.
template <class R>
class ResultState : public Job {
 public:
  using OnSuccess = typename SuccessCallback<R>::type;
  using OnError = std::function<void(std::exception_ptr)>;

  ResultState(OnSuccess callback, OnError error_callback) {
    if (callback || error_callback)
      callbacks_ = std::make_unique<const Callbacks>(
          Callbacks{std::move(callback), std::move(error_callback)});
  }

  void attach(std::weak_ptr<JobControl> control, std::uint64_t id) override {
    std::scoped_lock lock(mutex_);
    control_ = std::move(control);
    job_id_ = id;
  }
  [[nodiscard]] bool runs_callbacks() const override { return callbacks_ != nullptr; }
  void mark_cancelled() override {
    std::scoped_lock lock(mutex_);
    if (!ready_) cancelled_ = true;
  }

  // AsyncResult::cancel: true when cancelled (now or before), false when done or running (and
  // not `interrupt`) or when no pool can cancel it.
  bool cancel(bool interrupt) {
    std::weak_ptr<JobControl> control;
    std::uint64_t id = 0;
    {
      std::scoped_lock lock(mutex_);
      if (cancelled_) return true;
      if (ready_) return false;
      control = control_;
      id = job_id_;
    }
    auto pool = control.lock();
    return pool && pool->cancel_job(id, interrupt);
  }
  bool cancelled() {
    std::scoped_lock lock(mutex_);
    return cancelled_ && ready_;
  }
  // Finished with an exception that is not a cancel.
  bool failed() {
    std::scoped_lock lock(mutex_);
    return ready_ && error_ && !cancelled_;
  }

  // Runs `fn` once the result is ready: at once, in this thread, if it is; otherwise in the
  // thread that completes it (the collector, or a cancelling thread).
  void add_done_callback(std::function<void()> fn) {
    {
      std::scoped_lock lock(mutex_);
      if (!ready_) {
        listeners().done_callbacks.push_back(std::move(fn));
        return;
      }
    }
    run_callback(fn);
  }
  // Notifies `signal` once the result is ready; returns whether it is already (then nothing is
  // kept).
  bool add_done_signal(const std::shared_ptr<DoneSignal>& signal) {
    std::scoped_lock lock(mutex_);
    if (ready_) return true;
    auto& signals = listeners().signals;
    std::erase_if(signals, [](const std::weak_ptr<DoneSignal>& s) { return s.expired(); });
    signals.push_back(signal);
    return false;
  }

  // One chunk, one item: apply/apply_async.
  void deliver(std::uint32_t, std::span<const ItemResult> items) override {
    if (items.size() != 1) {
      fail(0, std::make_exception_ptr(SerializationError("a result with the wrong item count")));
      return;
    }
    const ItemResult& item = items[0];
    try {
      if constexpr (std::is_void_v<R>) {
        take_result<void>(ResultView{0, item.status, item.payload});
        set_value();
      } else {
        set_value(take_result<R>(ResultView{0, item.status, item.payload}));
      }
    } catch (...) {
      fail(0, std::current_exception());
    }
  }

  void fail(std::uint32_t, std::exception_ptr error) override {
    std::unique_ptr<Listeners> waiters;  // taken under mutex_, told after it
    {
      std::scoped_lock lock(mutex_);
      if (ready_) return;
      error_ = error;
      ready_ = true;
      ready_seen_.store(true, std::memory_order_release);
      waiters = std::move(listeners_);
    }
    cv_.notify_all();
    if (callbacks_) run_callback(callbacks_->on_error, error);
    if (waiters) waiters->run();
  }

  template <class... V>
  void set_value(V&&... v) {
    std::unique_ptr<Listeners> waiters;  // taken under mutex_, told after it
    {
      std::scoped_lock lock(mutex_);
      if (ready_) return;
      if constexpr (std::is_void_v<R>) {
        slot_.value = true;
      } else {
        slot_.value.emplace(std::forward<V>(v)...);
      }
      ready_ = true;
      ready_seen_.store(true, std::memory_order_release);
      waiters = std::move(listeners_);
    }
    cv_.notify_all();
    if (callbacks_ && callbacks_->on_success) {
      if constexpr (std::is_void_v<R>) {
        run_callback(callbacks_->on_success);
      } else {
        run_callback(callbacks_->on_success, *slot_.value);  // no writer after ready_ but take()
      }
    }
    if (waiters) waiters->run();
  }

  bool wait(const Deadline& deadline) {
    // A result due within microseconds (a short task on an idle pool) is caught awake.
    if (!ready_seen_.load(std::memory_order_acquire)) {
      auto seen = [&] { return ready_seen_.load(std::memory_order_acquire); };
      if (auto help = wait_help()) {
        (void)spin_for([&] { return seen() || (help->poll(), seen()); },
                       std::min<std::chrono::nanoseconds>(kHelpedSpinBudget, deadline.remaining()));
        help->leave(seen());
      } else {
        (void)spin_for(seen, std::min<std::chrono::nanoseconds>(kSpinBudget, deadline.remaining()));
      }
    }
    std::unique_lock lock(mutex_);
    if (deadline.is_never()) {
      cv_.wait(lock, [&] { return ready_; });
      return true;
    }
    return cv_.wait_until(lock, deadline.when(), [&] { return ready_; });
  }

  bool ready() {
    std::scoped_lock lock(mutex_);
    return ready_;
  }

  bool successful() {
    std::scoped_lock lock(mutex_);
    if (!ready_) throw ValueError("the result is not ready");
    return !error_;
  }

  // After wait() returned true, for the only consumer of a result without a callback (what
  // Pool::map hands out): the value moved out.
  R take() {
    std::scoped_lock lock(mutex_);
    if (error_) std::rethrow_exception(error_);
    if constexpr (!std::is_void_v<R>) return std::move(*slot_.value);
  }

  // After wait() returned true.
  decltype(auto) value() {
    std::scoped_lock lock(mutex_);
    if (error_) std::rethrow_exception(error_);
    if constexpr (!std::is_void_v<R>) return static_cast<const R&>(*slot_.value);
  }

 private:
  std::unique_ptr<WaitHelp> wait_help() {
    std::weak_ptr<JobControl> control;
    {
      std::scoped_lock lock(mutex_);
      control = control_;
    }
    auto pool = control.lock();
    return pool ? pool->wait_help() : nullptr;
  }

  // What few results have lives behind pointers, allocated only for them: a stream of plain
  // apply_async results then takes a third less fresh memory (168 bytes, not 272, for a long),
  // which the kernel faults in page by page (measured: a fifth of apply_async_throughput's
  // samples).
  struct Callbacks {
    OnSuccess on_success;
    OnError on_error;
  };
  struct Listeners {  // added before the result was ready; told once it is
    std::vector<std::function<void()>> done_callbacks;
    std::vector<std::weak_ptr<DoneSignal>> signals;
    void run() {
      for (auto& fn : done_callbacks) run_callback(fn);
      for (auto& s : signals)
        if (auto signal = s.lock()) signal->notify();
    }
  };
  Listeners& listeners() {  // under mutex_
    if (!listeners_) listeners_ = std::make_unique<Listeners>();
    return *listeners_;
  }

  std::mutex mutex_;
  std::condition_variable cv_;
  bool ready_ = false;
  std::atomic<bool> ready_seen_{false};  // ready_, for spinning waiters (set under mutex_)
  bool cancelled_ = false;
  Slot<R> slot_;
  std::exception_ptr error_;
  std::unique_ptr<const Callbacks> callbacks_;  // set at construction only: read without mutex_
  std::unique_ptr<Listeners> listeners_;        // under mutex_
  std::weak_ptr<JobControl> control_;
  std::uint64_t job_id_ = 0;
};

// map/map_async/starmap: every chunk must come back; the result is the list in input order, or
// the first error (by position) once every chunk is in (Python does not fail fast).
template <class R>
class MapState : public Job {
 public:
  using List = std::vector<R>;

  MapState(std::vector<std::uint32_t> chunk_starts, std::size_t size,
           std::function<void(const List&)> callback,
           std::function<void(std::exception_ptr)> error_callback,
           std::shared_ptr<ProgressBar> progress = nullptr)
      : result_(std::move(callback), std::move(error_callback)),
        progress_(std::move(progress)),
        chunk_starts_(std::move(chunk_starts)),
        remaining_(chunk_starts_.size()) {
    values_.reserve(size);
    advise_huge_pages(values_.data(), size * sizeof(values_[0]));
    values_.resize(size);
    if (remaining_ == 0) result_.set_value(List{});
  }

  // Keeps `what` (the arguments the workers read) alive as long as this job.
  void keep_alive(std::shared_ptr<void> what) { kept_ = std::move(what); }

  void attach(std::weak_ptr<JobControl> control, std::uint64_t id) override {
    result_.attach(std::move(control), id);
  }
  void mark_cancelled() override { result_.mark_cancelled(); }
  [[nodiscard]] bool runs_callbacks() const override { return result_.runs_callbacks(); }

  void deliver(std::uint32_t chunk, std::span<const ItemResult> items) override {
    std::size_t first = chunk_starts_.at(chunk);
    for (std::size_t i = 0; i < items.size() && first + i < values_.size(); ++i) {
      try {
        values_[first + i] = take_result<R>(ResultView{0, items[i].status, items[i].payload});
      } catch (...) {
        note_error(first + i, std::current_exception());
      }
    }
    if (progress_) progress_->advance(items.size());
    finish_chunk();
  }

  // Raw values are copied in one go; only the failed items are looked at one by one.
  void deliver_packed(std::uint32_t chunk, const PackedResults& results) override {
    if constexpr (!kPlain) {
      Job::deliver_packed(chunk, results);
    } else {
      if (results.size != sizeof(R)) {
        Job::deliver_packed(chunk, results);
        return;
      }
      std::size_t first = chunk_starts_.at(chunk);
      std::size_t count = std::min<std::size_t>(results.count, values_.size() - first);
      R* const destination = values_.data() + first;
      if (count != 0 && results.values.data() != static_cast<const void*>(destination))
        std::memcpy(destination, results.values.data(), count * sizeof(R));
      for (const auto& [index, payload] : results.errors) {
        if (index >= count) continue;
        try {
          rethrow_remote(payload);
        } catch (...) {
          note_error(first + index, std::current_exception());
        }
      }
      if (progress_) progress_->advance(results.count);
      finish_chunk();
    }
  }

  // The list itself: the results of a map over a million items are not copied twice.
  char* packed_destination(std::uint32_t chunk, std::uint32_t count, std::uint32_t size) override {
    if constexpr (kPlain) {
      if (size != sizeof(R) || chunk >= chunk_starts_.size()) return nullptr;
      std::size_t first = chunk_starts_[chunk];
      if (first + count > values_.size()) return nullptr;
      return reinterpret_cast<char*>(values_.data() + first);
    } else {
      return nullptr;
    }
  }

  void fail(std::uint32_t chunk, std::exception_ptr error) override {
    note_error(chunk_starts_.at(chunk), error);
    if (progress_) {
      std::size_t end =
          chunk + 1 < chunk_starts_.size() ? chunk_starts_[chunk + 1] : values_.size();
      progress_->advance(end - chunk_starts_[chunk]);
    }
    finish_chunk();
  }

  ResultState<List>& result() { return result_; }

 private:
  void note_error(std::size_t position, std::exception_ptr error) {
    std::scoped_lock lock(mutex_);
    if (!error_ || position < error_position_) {
      error_ = error;
      error_position_ = position;
    }
  }

  void finish_chunk() {
    std::exception_ptr error;
    {
      std::scoped_lock lock(mutex_);
      if (--remaining_ != 0) return;
      error = error_;
    }
    if (error) {
      result_.fail(0, error);
      return;
    }
    if constexpr (kPlain) {
      result_.set_value(std::move(values_));
    } else {
      List list;
      list.reserve(values_.size());
      for (auto& v : values_) list.push_back(std::move(*v));
      result_.set_value(std::move(list));
    }
  }

  // Values that need no "not yet set" state: the list itself is filled in place.
  static constexpr bool kPlain =
      std::is_trivially_copyable_v<R> && std::is_default_constructible_v<R>;

  ResultState<List> result_;
  std::shared_ptr<ProgressBar> progress_;
  std::vector<std::uint32_t> chunk_starts_;
  // Each written once, by the collector.
  std::conditional_t<kPlain, std::vector<R>, std::vector<std::optional<R>>> values_;
  std::shared_ptr<void> kept_;
  std::mutex mutex_;
  std::size_t remaining_;
  std::exception_ptr error_;
  std::size_t error_position_ = 0;
};

// imap/imap_unordered: outcomes are queued as they arrive and taken by next().
template <class R>
class IMapState : public Job {
 public:
  using Outcome = std::variant<R, std::exception_ptr>;

  explicit IMapState(bool ordered, std::shared_ptr<ProgressBar> progress = nullptr)
      : ordered_(ordered), progress_(std::move(progress)) {}
  [[nodiscard]] bool runs_callbacks() const override { return false; }

  // Called by the submitting side as chunks are created.
  void add_chunk(std::uint32_t chunk, std::size_t first, std::size_t count) {
    std::scoped_lock lock(mutex_);
    chunks_[chunk] = {first, count};
    total_ = first + count;
  }
  // The input ended (normally, or with `error` at position `at`: the sequence stops there).
  void input_ended(std::exception_ptr error = nullptr) {
    {
      std::scoped_lock lock(mutex_);
      input_done_ = true;
      if (error) {
        pending_by_position_[total_] = error;
        arrived_.push_back(error);
        ++total_;
        stop_after_ = total_;
      }
    }
    cv_.notify_all();
  }

  void deliver(std::uint32_t chunk, std::span<const ItemResult> items) override {
    std::vector<Outcome> outcomes;
    outcomes.reserve(items.size());
    for (const auto& item : items) {
      try {
        outcomes.emplace_back(std::in_place_index<0>,
                              take_result<R>(ResultView{0, item.status, item.payload}));
      } catch (...) {
        outcomes.emplace_back(std::in_place_index<1>, std::current_exception());
      }
    }
    store(chunk, std::move(outcomes));
  }

  void fail(std::uint32_t chunk, std::exception_ptr error) override {
    std::size_t count = 0;
    {
      std::scoped_lock lock(mutex_);
      count = chunks_.at(chunk).second;
    }
    store(chunk, std::vector<Outcome>(count, Outcome(std::in_place_index<1>, error)));
  }

  // The next outcome; nullopt at the end. Throws TimeoutError when the deadline passes first.
  std::optional<Outcome> next(const Deadline& deadline, const std::function<void()>& on_consumed) {
    std::unique_lock lock(mutex_);
    auto available = [&] {
      if (ordered_) return pending_by_position_.count(next_position_) > 0 || at_end();
      return !arrived_.empty() || at_end();
    };
    if (deadline.is_never()) {
      cv_.wait(lock, available);
    } else if (!cv_.wait_until(lock, deadline.when(), available)) {
      throw TimeoutError("no result arrived before the timeout");
    }
    if (ordered_) {
      auto it = pending_by_position_.find(next_position_);
      if (it == pending_by_position_.end()) return std::nullopt;
      Outcome outcome = std::move(it->second);
      pending_by_position_.erase(it);
      ++next_position_;
      ++consumed_;
      lock.unlock();
      if (on_consumed) on_consumed();
      return outcome;
    }
    if (arrived_.empty()) return std::nullopt;
    Outcome outcome = std::move(arrived_.front());
    arrived_.pop_front();
    ++next_position_;
    ++consumed_;
    lock.unlock();
    if (on_consumed) on_consumed();
    return outcome;
  }

  // How many outcomes have been produced but not yet taken (for the pool's buffersize).
  std::size_t outstanding() {
    std::scoped_lock lock(mutex_);
    return total_ - consumed_;
  }

 private:
  bool at_end() const {
    return input_done_ && (next_position_ >= total_ || next_position_ >= stop_after_);
  }

  void store(std::uint32_t chunk, std::vector<Outcome> outcomes) {
    if (progress_) progress_->advance(outcomes.size());
    {
      std::scoped_lock lock(mutex_);
      std::size_t first = chunks_.at(chunk).first;
      for (std::size_t i = 0; i < outcomes.size(); ++i) {
        if (first + i >= stop_after_) break;  // after an input error the sequence has ended
        if (ordered_) {
          pending_by_position_.emplace(first + i, std::move(outcomes[i]));
        } else {
          arrived_.push_back(std::move(outcomes[i]));
        }
      }
    }
    cv_.notify_all();
  }

  const bool ordered_;
  std::shared_ptr<ProgressBar> progress_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::map<std::uint32_t, std::pair<std::size_t, std::size_t>> chunks_;  // chunk -> first, count
  std::map<std::size_t, Outcome> pending_by_position_;                   // ordered
  std::deque<Outcome> arrived_;                                          // unordered
  std::size_t total_ = 0;
  std::size_t stop_after_ = static_cast<std::size_t>(-1);
  std::size_t next_position_ = 0;
  std::size_t consumed_ = 0;
  bool input_done_ = false;
};

}  // namespace detail

// AsyncResult::cancel's options.
struct CancelOptions {
  // Also stop the task if a worker already runs it, by killing that worker (SIGKILL, or SIGTERM
  // first when the task was submitted with a kill_grace); the worker is replaced. Without it,
  // as concurrent.futures' cancel, only a task that has not started can be cancelled.
  bool interrupt = false;
};

// The result of `apply_async` (and, with R = std::vector<T>, of `map_async`/`starmap_async`):
// Python's AsyncResult, with concurrent.futures' cancel(), cancelled() and add_done_callback().
// A copy is another handle on the same result.
template <class R>
class [[nodiscard]] AsyncResult {
 public:
  using value_type = R;

  explicit AsyncResult(std::shared_ptr<detail::ResultState<R>> state) : state_(std::move(state)) {}

  // Waits for the result and returns it (a copy; `get` may be called again), or rethrows the
  // task's exception: a standard or registered exception type as itself, anything else as
  // RemoteError; WorkerLostError when the worker running it died; ProcessError when the pool was
  // terminated first; TimeoutError when the task ran past its own timeout (`{.timeout = ...}` of
  // apply_async, `{.task_timeout = ...}` of map: the task was stopped, its message says so);
  // CancelledError when it was cancelled. Woken by the pool's collector thread when the result
  // arrives.
  R get() { return get(Deadline::never()); }
  // As get(), but throws TimeoutError when `deadline` passes first. Unlike a task's own timeout,
  // this only stops the waiting: the task keeps running and its result can be got later.
  R get(const Deadline& deadline) {
    if (!state_->wait(deadline)) throw TimeoutError("the result did not arrive before the timeout");
    if constexpr (std::is_void_v<R>) {
      state_->value();
    } else {
      return state_->value();
    }
  }
  template <class Rep, class Period>
  R get(std::chrono::duration<Rep, Period> timeout) {
    return get(Deadline::after(timeout));
  }

  // Waits until the result is ready (or the deadline passes: false). Never throws the task's
  // exception.
  void wait() { state_->wait(Deadline::never()); }
  bool wait(const Deadline& deadline) { return state_->wait(deadline); }
  template <class Rep, class Period>
  bool wait(std::chrono::duration<Rep, Period> timeout) {
    return state_->wait(Deadline::after(timeout));
  }

  [[nodiscard]] bool ready() const { return state_->ready(); }
  // concurrent.futures' done(): ready() (finished, failed or cancelled).
  [[nodiscard]] bool done() const { return state_->ready(); }
  // Whether the task returned without throwing. ValueError while not ready (as Python's).
  [[nodiscard]] bool successful() const { return state_->successful(); }

  // concurrent.futures' cancel(): a task still queued is dropped (no worker runs it) and the
  // result fails with CancelledError at once; returns true. A task that a worker runs already is
  // left alone (false), unless `{.interrupt = true}`: then its worker is killed (and replaced)
  // and the result is cancelled all the same. False once the result is ready (unless it was
  // cancelled: true again). For a map_async result, every chunk counts: it is cancelled only if
  // none has started (or with interrupt). Runs add_done_callback's callbacks in this thread.
  // Cancelled tasks are remembered in a table of 4096 entries by job number: a queued task
  // whose entry a later cancel reused may still run, but its result is dropped.
  bool cancel(CancelOptions options = {}) { return state_->cancel(options.interrupt); }
  // Whether cancel() (or Pool::terminate_workers) cancelled it.
  [[nodiscard]] bool cancelled() const { return state_->cancelled(); }

  // concurrent.futures' add_done_callback(fn): calls fn(result) once the result is ready (done,
  // failed or cancelled): at once, in this thread, if it is; otherwise in the thread that makes
  // it ready (the pool's collector thread, or the one calling cancel). What fn throws is logged
  // and ignored. Callbacks run in the order they were added.
  void add_done_callback(std::function<void(AsyncResult<R>)> fn) {
    std::weak_ptr<detail::ResultState<R>> weak = state_;
    state_->add_done_callback([weak, fn = std::move(fn)] {
      if (auto state = weak.lock()) fn(AsyncResult<R>(std::move(state)));
    });
  }

  // Internal: for mproc::wait and mproc::as_completed.
  [[nodiscard]] detail::ResultState<R>& detail_state() const { return *state_; }

 private:
  friend class Pool;
  // get(), moving the value out: for Pool::map, whose result nobody else sees.
  R take() {
    state_->wait(Deadline::never());
    return state_->take();
  }

  std::shared_ptr<detail::ResultState<R>> state_;
};

// What `imap`/`imap_unordered` return: results one by one, in input order (imap) or in
// completion order (imap_unordered). An input range usable in range-for:
//
//   for (int v : pool.imap(square, std::views::iota(0, 1000))) ...
//
// A task's exception is thrown by `next()` (and by the iterator's increment) at its position;
// iteration may go on after it. An exception thrown by the input range ends the sequence there.
template <class R>
class [[nodiscard]] IMapIterator {
 public:
  IMapIterator(std::shared_ptr<detail::IMapState<R>> state, std::function<void()> on_consumed)
      : state_(std::move(state)), on_consumed_(std::move(on_consumed)) {}

  // The next result, or nullopt at the end (Python: StopIteration). Throws the task's exception
  // for a failed item, TimeoutError when the deadline passes first.
  std::optional<R> next(const Deadline& deadline = Deadline::never()) {
    auto outcome = state_->next(deadline, on_consumed_);
    if (!outcome) return std::nullopt;
    if (outcome->index() == 1) std::rethrow_exception(std::get<1>(*outcome));
    return std::move(std::get<0>(*outcome));
  }
  template <class Rep, class Period>
  std::optional<R> next(std::chrono::duration<Rep, Period> timeout) {
    return next(Deadline::after(timeout));
  }

  class iterator {
   public:
    using value_type = R;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    explicit iterator(IMapIterator* owner) : owner_(owner) { advance(); }
    const R& operator*() const { return *current_; }
    iterator& operator++() {
      advance();
      return *this;
    }
    void operator++(int) { advance(); }
    bool operator==(std::default_sentinel_t) const { return !current_; }

   private:
    void advance() {
      current_.reset();
      current_ = owner_->next();
    }
    IMapIterator* owner_ = nullptr;
    std::optional<R> current_;
  };

  iterator begin() { return iterator(this); }
  std::default_sentinel_t end() { return {}; }

 private:
  std::shared_ptr<detail::IMapState<R>> state_;
  std::function<void()> on_consumed_;
};

// ---- waiting on several results (concurrent.futures.wait and as_completed) ----

// When mproc::wait returns: concurrent.futures' FIRST_COMPLETED (one result is ready),
// FIRST_EXCEPTION (one failed, cancels not counted; or all are ready) and ALL_COMPLETED.
enum class ReturnWhen { kFirstCompleted, kFirstException, kAllCompleted };
inline constexpr ReturnWhen FIRST_COMPLETED = ReturnWhen::kFirstCompleted;
inline constexpr ReturnWhen FIRST_EXCEPTION = ReturnWhen::kFirstException;
inline constexpr ReturnWhen ALL_COMPLETED = ReturnWhen::kAllCompleted;

struct WaitOptions {
  ReturnWhen return_when = ReturnWhen::kAllCompleted;
  // Unset: wait for ever. When it passes, wait returns what is done by then (no exception).
  std::optional<std::chrono::nanoseconds> timeout{};
};

// concurrent.futures' DoneAndNotDoneFutures: handles on the results, in the order given.
template <class R>
struct DoneAndNotDone {
  std::vector<AsyncResult<R>> done;
  std::vector<AsyncResult<R>> not_done;
};

namespace detail {
template <class T>
struct IsAsyncResult : std::false_type {};
template <class R>
struct IsAsyncResult<AsyncResult<R>> : std::true_type {};
template <class Range>
concept AsyncResultRange = std::ranges::input_range<Range> &&
    IsAsyncResult<std::remove_cvref_t<std::ranges::range_value_t<Range>>>::value;
template <class Range>
using ResultValue = typename std::remove_cvref_t<std::ranges::range_value_t<Range>>::value_type;
}  // namespace detail

// concurrent.futures.wait(fs, timeout, return_when) over pool results (any range of
// AsyncResult<R>, e.g. a std::vector): blocks until `return_when` holds or the timeout passes,
// then returns the results split into done and not done. Woken by the threads that complete the
// results (no polling). An empty range returns at once. This overloads mproc::wait of
// mproc/wait.h (file descriptors) and connection.h (connections): the argument type picks.
//
//   auto [done, not_done] = mproc::wait(results, {.return_when = mproc::FIRST_COMPLETED});
//
// Thread safety: several threads may wait on the same results.
template <detail::AsyncResultRange Results>
DoneAndNotDone<detail::ResultValue<Results>> wait(const Results& results,
                                                  WaitOptions options = {}) {
  using R = detail::ResultValue<Results>;
  std::vector<AsyncResult<R>> all(std::ranges::begin(results), std::ranges::end(results));
  const Deadline deadline = options.timeout ? Deadline::after(*options.timeout) : Deadline::never();
  auto signal = std::make_shared<detail::DoneSignal>();
  for (auto& r : all) (void)r.detail_state().add_done_signal(signal);
  auto satisfied = [&] {
    std::size_t done = 0;
    bool failed = false;
    for (auto& r : all) {
      if (!r.done()) continue;
      ++done;
      failed = failed || r.detail_state().failed();
    }
    return done == all.size() || (options.return_when == ReturnWhen::kFirstCompleted && done > 0) ||
           (options.return_when == ReturnWhen::kFirstException && failed);
  };
  std::unique_lock lock(signal->mutex);
  for (;;) {
    const std::uint64_t seen = signal->generation;
    lock.unlock();
    if (satisfied()) break;
    lock.lock();
    auto changed = [&] { return signal->generation != seen; };
    if (deadline.is_never()) {
      signal->cv.wait(lock, changed);
    } else if (!signal->cv.wait_until(lock, deadline.when(), changed)) {
      lock.unlock();
      break;
    }
  }
  DoneAndNotDone<R> split;
  for (auto& r : all) (r.done() ? split.done : split.not_done).push_back(r);
  return split;
}

// What mproc::as_completed returns: the results one by one as they become ready (those ready
// already first, in the order given), as concurrent.futures.as_completed yields futures.
//
//   for (auto& r : mproc::as_completed(results, 10s)) use(r.get());
//
// next() (and the iterator's increment) throws TimeoutError when the deadline, counted from the
// call to as_completed, passes while results are still pending. Woken by the threads that
// complete the results. Thread safety: one consumer at a time.
template <class R>
class [[nodiscard]] AsCompleted {
 public:
  AsCompleted(std::vector<AsyncResult<R>> results, const Deadline& deadline)
      : signal_(std::make_shared<detail::DoneSignal>()),
        pending_(std::move(results)),
        total_(pending_.size()),
        deadline_(deadline) {
    for (auto& r : pending_) (void)r.detail_state().add_done_signal(signal_);
  }

  // The next ready result; nullopt once all were handed out.
  std::optional<AsyncResult<R>> next() {
    std::unique_lock lock(signal_->mutex);
    for (;;) {
      const std::uint64_t seen = signal_->generation;
      lock.unlock();
      if (ready_.empty()) {
        auto first_pending = std::stable_partition(
            pending_.begin(), pending_.end(), [](const AsyncResult<R>& r) { return r.done(); });
        ready_.insert(ready_.end(), pending_.begin(), first_pending);
        pending_.erase(pending_.begin(), first_pending);
      }
      if (!ready_.empty()) {
        AsyncResult<R> r = std::move(ready_.front());
        ready_.pop_front();
        return r;
      }
      if (pending_.empty()) return std::nullopt;
      lock.lock();
      auto changed = [&] { return signal_->generation != seen; };
      if (deadline_.is_never()) {
        signal_->cv.wait(lock, changed);
      } else if (!signal_->cv.wait_until(lock, deadline_.when(), changed)) {
        throw TimeoutError(std::to_string(pending_.size()) + " (of " + std::to_string(total_) +
                           ") results unfinished before the timeout");
      }
    }
  }

  class iterator {
   public:
    using value_type = AsyncResult<R>;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    explicit iterator(AsCompleted* owner) : owner_(owner) { current_ = owner_->next(); }
    AsyncResult<R>& operator*() const { return *current_; }
    iterator& operator++() {
      current_.reset();
      current_ = owner_->next();
      return *this;
    }
    void operator++(int) { ++*this; }
    bool operator==(std::default_sentinel_t) const { return !current_; }

   private:
    AsCompleted* owner_ = nullptr;
    mutable std::optional<AsyncResult<R>> current_;
  };

  iterator begin() { return iterator(this); }
  std::default_sentinel_t end() { return {}; }

 private:
  std::shared_ptr<detail::DoneSignal> signal_;
  std::vector<AsyncResult<R>> pending_;
  std::deque<AsyncResult<R>> ready_;
  std::size_t total_;
  Deadline deadline_;
};

// concurrent.futures.as_completed(fs, timeout) over pool results (any range of AsyncResult<R>).
template <detail::AsyncResultRange Results>
AsCompleted<detail::ResultValue<Results>> as_completed(
    const Results& results, const Deadline& deadline = Deadline::never()) {
  using R = detail::ResultValue<Results>;
  return AsCompleted<R>(
      std::vector<AsyncResult<R>>(std::ranges::begin(results), std::ranges::end(results)),
      deadline);
}
template <detail::AsyncResultRange Results, class Rep, class Period>
AsCompleted<detail::ResultValue<Results>> as_completed(const Results& results,
                                                       std::chrono::duration<Rep, Period> timeout) {
  return as_completed(results, Deadline::after(timeout));
}

}  // namespace mproc
