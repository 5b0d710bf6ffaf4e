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
// block not yet touched.
inline constexpr std::size_t kLargeAllocation = std::size_t{256} << 10;
[[nodiscard]] void* allocate_large(std::size_t bytes);
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

// What the pool's collector thread feeds: the results of one chunk of a job, or its failure
// (a lost worker, a terminated pool, an input range that threw). Each chunk is delivered or
// failed exactly once.
class Job {
 public:
  virtual ~Job() = default;
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
  virtual void fail(std::uint32_t chunk, std::exception_ptr error) = 0;
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

  ResultState(OnSuccess callback, OnError error_callback)
      : callback_(std::move(callback)), error_callback_(std::move(error_callback)) {}

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
    {
      std::scoped_lock lock(mutex_);
      if (ready_) return;
      error_ = error;
      ready_ = true;
      ready_seen_.store(true, std::memory_order_release);
    }
    cv_.notify_all();
    run_callback(error_callback_, error);
  }

  template <class... V>
  void set_value(V&&... v) {
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
    }
    cv_.notify_all();
    if constexpr (std::is_void_v<R>) {
      run_callback(callback_);
    } else if (callback_) {
      run_callback(callback_, *slot_.value);  // set once; no writer after ready_ but take()
    }
  }

  bool wait(const Deadline& deadline) {
    // A result due within microseconds (a short task on an idle pool) is caught awake.
    if (!ready_seen_.load(std::memory_order_acquire)) {
      (void)spin_for([&] { return ready_seen_.load(std::memory_order_acquire); },
                     std::min<std::chrono::nanoseconds>(kSpinBudget, deadline.remaining()));
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
  std::mutex mutex_;
  std::condition_variable cv_;
  bool ready_ = false;
  std::atomic<bool> ready_seen_{false};  // ready_, for spinning waiters (set under mutex_)
  Slot<R> slot_;
  std::exception_ptr error_;
  OnSuccess callback_;
  OnError error_callback_;
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
      if (count != 0) std::memcpy(values_.data() + first, results.values.data(), count * sizeof(R));
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

// The result of `apply_async` (and, with R = std::vector<T>, of `map_async`/`starmap_async`).
template <class R>
class [[nodiscard]] AsyncResult {
 public:
  explicit AsyncResult(std::shared_ptr<detail::ResultState<R>> state) : state_(std::move(state)) {}

  // Waits for the result and returns it (a copy; `get` may be called again), or rethrows the
  // task's exception: a standard or registered exception type as itself, anything else as
  // RemoteError; WorkerLostError when the worker running it died; ProcessError when the pool was
  // terminated first. Woken by the pool's collector thread when the result arrives.
  R get() { return get(Deadline::never()); }
  // As get(), but throws TimeoutError when `deadline` passes first (the task keeps running).
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
  // Whether the task returned without throwing. ValueError while not ready (as Python's).
  [[nodiscard]] bool successful() const { return state_->successful(); }

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

}  // namespace mproc
