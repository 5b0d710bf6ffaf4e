// mproc/condition.h
//
// `Condition`: a condition variable shared between processes, like Python's
// `multiprocessing.Condition`, over a `Lock` or an `RLock` (a new RLock by default).
//
//   mproc::Condition cond;
//   // consumer:
//   std::scoped_lock hold(cond);
//   cond.wait_for([&] { return *ready; });
//   // producer:
//   { std::scoped_lock hold(cond); *ready = true; cond.notify_all(); }
//
// A handle: copies share one condition (and its lock), kept in a small shared-memory segment
// owned by the creating process; `attach(name())` reaches it, lock included, from another
// process.
//
// Wake-ups: `notify(n)` wakes exactly min(n, waiting) of the processes/threads that were waiting
// when it was called, never one that started waiting afterwards; a waiter that times out at the
// same moment either counts as woken (its wait returns true) or not at all. Waiters sleep on a
// futex; nothing polls.
//
// Robustness: notify() never waits for the waiters (Python's does, and hangs if one was killed).
// A waiter killed while waiting stays counted but never takes a wake-up, so live waiters are
// still woken as promised; a wake-up granted to it but left unclaimed (when notify(n) found fewer
// live waiters than n) goes to the next waiter eligible for it, which then returns early, like a
// spurious wake-up (loop on a predicate, as wait_for() does).
//
// Errors: wait() and notify() by a caller that does not hold the lock throw ValueError (Python:
// AssertionError / RuntimeError).
//
// Thread safety: every member function may be called from any thread of any process.
// Fork safety: a condition created before a fork is shared by parent and child.
#pragma once

#include <chrono>
#include <climits>
#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>

#include "mproc/deadline.h"
#include "mproc/detail/blank_handle.h"
#include "mproc/lock.h"
#include "mproc/shm.h"

namespace mproc {

namespace detail {
struct ConditionState;
}  // namespace detail

class Condition {
 public:
  // Over a new RLock.
  Condition();
  // Over an existing lock (shared with whoever else uses it).
  explicit Condition(Lock lock);
  explicit Condition(RLock lock);
  // A handle to no condition, to load into (see detail/blank_handle.h).
  explicit Condition(detail::BlankHandle blank) noexcept
      : Condition(SharedSegment{}, nullptr,
                  std::variant<Lock, RLock>(std::in_place_type<Lock>, blank)) {}
  // The condition created elsewhere as `name`, with its lock.
  [[nodiscard]] static Condition attach(std::string_view name);

  // The lock's acquire/release (see lock.h), also as Lockable and TimedLockable.
  bool acquire(bool block = true) { return base().acquire(block); }
  bool acquire(const Deadline& deadline) { return base().acquire(deadline); }
  template <class Rep, class Period>
  bool acquire(std::chrono::duration<Rep, Period> timeout) {
    return base().acquire(Deadline::after(timeout));
  }
  // `acquire(0.5)` would silently mean `acquire(true)`: say `acquire(500ms)`.
  template <class T>
  requires(std::is_arithmetic_v<T> && !std::is_same_v<T, bool>) bool acquire(T) = delete;
  void release() { base().release(); }
  void lock() { base().acquire(true); }
  void unlock() { base().release(); }
  [[nodiscard]] bool try_lock() { return base().acquire(false); }
  template <class Rep, class Period>
  [[nodiscard]] bool try_lock_for(std::chrono::duration<Rep, Period> timeout) {
    return base().acquire(Deadline::after(timeout));
  }

  // Releases the lock (every level of an RLock), sleeps until notified or until `deadline`,
  // takes the lock back (as deep as before, waiting for it as long as needed) and returns true
  // when notified, false on timeout. Wakes on notify()/notify_all().
  bool wait(const Deadline& deadline = Deadline::never());
  template <class Rep, class Period>
  bool wait(std::chrono::duration<Rep, Period> timeout) {
    return wait(Deadline::after(timeout));
  }

  // Waits until `predicate()` (called with the lock held) is true or `deadline` passes; returns
  // the predicate's last value.
  template <class Predicate>
  bool wait_for(Predicate predicate, const Deadline& deadline = Deadline::never()) {
    bool result = predicate();
    while (!result) {
      if (deadline.expired()) break;
      wait(deadline);
      result = predicate();
    }
    return result;
  }
  template <class Predicate, class Rep, class Period>
  bool wait_for(Predicate predicate, std::chrono::duration<Rep, Period> timeout) {
    return wait_for(std::move(predicate), Deadline::after(timeout));
  }

  // Wakes min(n, waiting) waiters. The caller must hold the lock.
  void notify(std::uint32_t n = 1);
  void notify_all() { notify(UINT32_MAX); }

  [[nodiscard]] const std::string& name() const noexcept { return segment_.name(); }
  // `<Condition(<RLock(None, 0)>, 0)>`: the lock and the number of sleeping waiters.
  [[nodiscard]] std::string repr() const;

  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    detail::serialize_by_name(ar, *this);
  }

 private:
  Condition(SharedSegment segment, detail::ConditionState* state, std::variant<Lock, RLock> lock)
      : segment_(std::move(segment)), state_(state), lock_(std::move(lock)) {}
  void init();
  LockBase& base() noexcept {
    return std::visit([](auto& l) -> LockBase& { return l; }, lock_);
  }

  SharedSegment segment_;
  detail::ConditionState* state_ = nullptr;
  std::variant<Lock, RLock> lock_;
};

inline std::ostream& operator<<(std::ostream& os, const Condition& c) { return os << c.repr(); }

}  // namespace mproc
