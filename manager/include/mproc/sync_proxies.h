// mproc/sync_proxies.h
//
// Proxies to the synchronization objects of a manager (managed_sync.h): `AcquirerProxy` (Lock,
// RLock, Semaphore, BoundedSemaphore), `EventProxy`, `ConditionProxy`, `BarrierProxy`.
//
//   mproc::Manager manager;
//   mproc::AcquirerProxy lock = manager.Lock();
//   {
//     std::unique_lock hold(lock);                 // Lockable and TimedLockable
//   }
//   if (lock.acquire(500ms)) lock.release();
//   mproc::EventProxy ready = manager.Event();
//   mproc::Process child([=] { ready.set(); });   // proxies work in children and Pool tasks
//   bool was_set = ready.wait(2s);
//
// Python counterpart: `multiprocessing.managers.AcquirerProxy`, `EventProxy`, `ConditionProxy`
// and `BarrierProxy`, which is to say `threading` objects living in the manager's server:
//  - A Lock may be released by any process (not only the one that acquired it); releasing an
//    unheld one throws ValueError (Python's RuntimeError).
//  - An RLock or a Condition belongs to the calling *thread* (each thread of each process has its
//    own connection, served by its own server thread): acquire and release it from one thread.
//  - A Semaphore may be acquired in one process and released in another; a BoundedSemaphore
//    released above its initial value throws ValueError.
//
// Every call is one request to the server. Blocking calls (acquire, wait) block only the calling
// thread, until what they wait for happens in the server or the timeout runs out (timeouts are
// measured in the server, from when the request arrives). Timeouts: Python's `timeout=` in
// seconds as `std::optional<double>` (nullopt: for ever), or a std::chrono duration. `acquire(0.5)`
// would mean `acquire(true)`: it does not compile; write `acquire(true, 0.5)` or
// `acquire(500ms)`.
//
// Errors: what the server object throws (managed_sync.h), rethrown as itself; EOFError when the
// server is gone (proxy.h). Thread safety, fork safety, lifetime: as every proxy (proxy.h).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <type_traits>
#include <utility>

#include "mproc/deadline.h"
#include "mproc/managed_sync.h"
#include "mproc/proxy.h"

namespace mproc {

namespace detail {

// A chrono timeout as the seconds the server expects (a negative one is zero).
template <class Rep, class Period>
[[nodiscard]] double seconds_of(std::chrono::duration<Rep, Period> timeout) {
  double s = std::chrono::duration<double>(timeout).count();
  return s > 0 ? s : 0.0;
}

// What is left of `deadline`, in seconds (nullopt for never).
[[nodiscard]] inline std::optional<double> seconds_left(const Deadline& deadline) {
  if (deadline.is_never()) return std::nullopt;
  return std::chrono::duration<double>(deadline.remaining()).count();
}

// An arithmetic type that would silently convert to `bool blocking`.
template <class T>
concept NotATimeout = std::is_arithmetic_v<T> && !std::is_same_v<T, bool>;

}  // namespace detail

namespace detail {
template <auto A, auto B>
inline constexpr bool same_wire_signature_v =
    std::is_same_v<typename MemberSignature<decltype(A)>::Function,
                   typename MemberSignature<decltype(B)>::Function>;
}  // namespace detail
// AcquirerProxy calls the four types through managed::Lock's signatures.
static_assert(
    detail::same_wire_signature_v<&managed::Lock::acquire, &managed::RLock::acquire> &&
    detail::same_wire_signature_v<&managed::Lock::acquire, &managed::Semaphore::acquire> &&
    detail::same_wire_signature_v<&managed::Lock::acquire, &managed::BoundedSemaphore::acquire> &&
    detail::same_wire_signature_v<&managed::Lock::release, &managed::RLock::release> &&
    detail::same_wire_signature_v<&managed::Lock::release, &managed::Semaphore::release>);

// A Lock, RLock, Semaphore or BoundedSemaphore in a manager (`manager.Lock()`, ...).
class AcquirerProxy : public BaseProxy {
 public:
  // The four server types expose the same acquire and release.
  using managed_type = managed::Lock;

  AcquirerProxy() = default;
  explicit AcquirerProxy(detail::Token token) : BaseProxy(std::move(token)) {}

  // Python's acquire(blocking=True, timeout=None): true once acquired. Blocks until a release
  // (of any process for Lock and semaphores) or the timeout; `blocking == false` tries once.
  // Throws ValueError for a timeout with `blocking == false`, or a negative timeout on a Lock or
  // RLock.
  bool acquire(bool blocking = true, std::optional<double> timeout = std::nullopt) const {
    return call_member<&managed::Lock::acquire>("acquire", blocking, timeout);
  }
  template <class Rep, class Period>
  bool acquire(std::chrono::duration<Rep, Period> timeout) const {
    return acquire(true, detail::seconds_of(timeout));
  }
  bool acquire(const Deadline& deadline) const {
    return acquire(true, detail::seconds_left(deadline));
  }
  template <detail::NotATimeout T>
  bool acquire(T) const = delete;

  // Throws ValueError when the lock is not held (Lock), not held by this thread (RLock), or a
  // BoundedSemaphore would go above its initial value.
  void release() const { call_member<&managed::Lock::release>("release"); }
  // Lock and RLock only (a semaphore throws AttributeError): whether anyone holds it.
  [[nodiscard]] bool locked() const { return call_member<&managed::Lock::locked>("locked"); }

  // Lockable / TimedLockable, for std::lock_guard, std::unique_lock and std::scoped_lock.
  void lock() const { (void)acquire(true); }
  void unlock() const { release(); }
  [[nodiscard]] bool try_lock() const { return acquire(false); }
  template <class Rep, class Period>
  [[nodiscard]] bool try_lock_for(std::chrono::duration<Rep, Period> timeout) const {
    return acquire(timeout);
  }
  template <class Clock2, class Duration>
  [[nodiscard]] bool try_lock_until(std::chrono::time_point<Clock2, Duration> when) const {
    return acquire(when - Clock2::now());
  }
};

// An Event in a manager (`manager.Event()`), Python's EventProxy.
class EventProxy : public BaseProxy {
 public:
  using managed_type = managed::Event;

  EventProxy() = default;
  explicit EventProxy(detail::Token token) : BaseProxy(std::move(token)) {}

  [[nodiscard]] bool is_set() const { return call_member<&managed::Event::is_set>("is_set"); }
  // Sets the flag and wakes every waiter (of every process).
  void set() const { call_member<&managed::Event::set>("set"); }
  void clear() const { call_member<&managed::Event::clear>("clear"); }
  // Blocks until the flag is set (woken by set()) or the timeout runs out; returns the flag,
  // false after a timeout.
  bool wait(std::optional<double> timeout = std::nullopt) const {
    return call_member<&managed::Event::wait>("wait", timeout);
  }
  template <class Rep, class Period>
  bool wait(std::chrono::duration<Rep, Period> timeout) const {
    return wait(std::optional<double>(detail::seconds_of(timeout)));
  }
  bool wait(const Deadline& deadline) const { return wait(detail::seconds_left(deadline)); }
};

// A Condition in a manager (`manager.Condition()`), with its own RLock: Python's
// ConditionProxy. The lock belongs to the calling thread, as an RLock's.
//
//   std::unique_lock hold(cond);
//   bool ok = cond.wait_for([&] { return shared.get("ready"); }, 2s);
class ConditionProxy : public BaseProxy {
 public:
  using managed_type = managed::Condition;

  ConditionProxy() = default;
  explicit ConditionProxy(detail::Token token) : BaseProxy(std::move(token)) {}

  // As AcquirerProxy::acquire, on the condition's RLock.
  bool acquire(bool blocking = true, std::optional<double> timeout = std::nullopt) const {
    return call_member<&managed::Condition::acquire>("acquire", blocking, timeout);
  }
  template <class Rep, class Period>
  bool acquire(std::chrono::duration<Rep, Period> timeout) const {
    return acquire(true, detail::seconds_of(timeout));
  }
  template <detail::NotATimeout T>
  bool acquire(T) const = delete;
  // Throws ValueError when this thread does not hold the lock.
  void release() const { call_member<&managed::Condition::release>("release"); }

  // Releases the lock, blocks until notified (by notify or notify_all from any process) or the
  // timeout runs out, takes the lock back; false after a timeout. Throws ValueError when this
  // thread does not hold the lock.
  bool wait(std::optional<double> timeout = std::nullopt) const {
    return call_member<&managed::Condition::wait>("wait", timeout);
  }
  template <class Rep, class Period>
  bool wait(std::chrono::duration<Rep, Period> timeout) const {
    return wait(std::optional<double>(detail::seconds_of(timeout)));
  }

  // Python's wait_for, run here as Python's proxy runs it: waits (as wait) until `predicate()`
  // is true, evaluating it with the lock held, at most `timeout`; returns the last result.
  template <class Predicate>
  bool wait_for(Predicate predicate, std::optional<double> timeout = std::nullopt) const {
    return wait_for_until(
        predicate,
        timeout ? Deadline::after(std::chrono::duration<double>(*timeout > 0 ? *timeout : 0.0))
                : Deadline::never());
  }
  template <class Predicate, class Rep, class Period>
  bool wait_for(Predicate predicate, std::chrono::duration<Rep, Period> timeout) const {
    return wait_for_until(predicate, Deadline::after(timeout));
  }

  // Wake up to `n` waiters / every waiter. Throw ValueError when this thread does not hold the
  // lock.
  void notify(std::int64_t n = 1) const { call_member<&managed::Condition::notify>("notify", n); }
  void notify_all() const { call_member<&managed::Condition::notify_all>("notify_all"); }

  // Lockable, for std::lock_guard and std::unique_lock.
  void lock() const { (void)acquire(true); }
  void unlock() const { release(); }
  [[nodiscard]] bool try_lock() const { return acquire(false); }

 private:
  template <class Predicate>
  bool wait_for_until(Predicate& predicate, const Deadline& deadline) const {
    bool result = static_cast<bool>(predicate());
    while (!result) {
      if (!deadline.is_never() && deadline.expired()) break;
      (void)wait(detail::seconds_left(deadline));
      result = static_cast<bool>(predicate());
    }
    return result;
  }
};

// A Barrier in a manager (`manager.Barrier(parties, timeout)`), Python's BarrierProxy (its
// properties are methods here).
class BarrierProxy : public BaseProxy {
 public:
  using managed_type = managed::Barrier;

  BarrierProxy() = default;
  explicit BarrierProxy(detail::Token token) : BaseProxy(std::move(token)) {}

  // Blocks until `parties()` threads (of any processes) wait, then returns this caller's arrival
  // index (0 .. parties-1). `timeout` (nullopt: the barrier's own) running out breaks the
  // barrier. Throws BrokenBarrierError when it is or becomes broken (abort, reset, a timeout).
  std::int64_t wait(std::optional<double> timeout = std::nullopt) const {
    return call_member<&managed::Barrier::wait>("wait", timeout);
  }
  template <class Rep, class Period>
  std::int64_t wait(std::chrono::duration<Rep, Period> timeout) const {
    return wait(std::optional<double>(detail::seconds_of(timeout)));
  }
  // Back to the empty state; current waiters get BrokenBarrierError.
  void reset() const { call_member<&managed::Barrier::reset>("reset"); }
  // Breaks the barrier until reset().
  void abort() const { call_member<&managed::Barrier::abort>("abort"); }
  [[nodiscard]] std::int64_t parties() const {
    return call_member<&managed::Barrier::parties>("parties");
  }
  [[nodiscard]] std::int64_t n_waiting() const {
    return call_member<&managed::Barrier::n_waiting>("n_waiting");
  }
  [[nodiscard]] bool broken() const { return call_member<&managed::Barrier::broken>("broken"); }
};

}  // namespace mproc
