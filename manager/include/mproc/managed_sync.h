// mproc/managed_sync.h
//
// The server-side objects behind sync_proxies.h and queue_proxy.h: locks, semaphores, an event,
// a condition, a barrier and a queue of encoded items. They live in a manager's server
// (manager.h, sync_manager.h); you use them through proxies, not directly:
//
//   mproc::Manager manager;
//   auto lock = manager.Lock();            // a managed::Lock in the server, an AcquirerProxy here
//   auto q = manager.Queue<int>(2);        // a managed::Queue in the server, a QueueProxy<int>
//
// Python counterpart: the referents of `SyncManager.Lock()/RLock()/Semaphore()/...` and
// `Queue()/JoinableQueue()`, which are `threading` and `queue` objects living in the server: they
// follow threading's rules, not multiprocessing's. In particular a manager Lock may be released
// by any client (not only the one that acquired it), and an RLock or a Condition belongs to the
// server thread that serves one client thread (each client thread has its own connection, so
// its own server thread).
//
// Timeouts arrive as `std::optional<double>` seconds (nullopt: wait for ever). Each blocking
// method blocks only the server thread of the calling client; what wakes it and what it throws is
// said at each method. Errors are the Python ones under mproc's names: threading's RuntimeError
// (releasing an unheld lock, waiting on an unowned condition) is ValueError, as for core's Lock.
//
// Thread safety: the server calls every method from several connection threads at once; each
// object guards its state with its own mutex. Lifetime: owned by the server's object table. A
// client that dies while the server thread serving it is blocked in a wait leaves that thread
// waiting until the wait ends (a timeout, or what would wake it), as in Python; an RLock or
// Condition it held stays held.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <list>
#include <mutex>
#include <optional>
#include <span>
#include <string>

#include "mproc/proxy.h"

namespace mproc::managed {

// Python `threading.Lock`. Not owned: any client may release it.
class Lock {
 public:
  Lock() = default;
  static std::span<const detail::Method<Lock>> exposed_methods();

  // Takes the lock; true once held. `blocking == false` tries once. Otherwise waits until a
  // release, at most `timeout` seconds (nullopt: for ever); false when it ran out. Throws
  // ValueError for a timeout with `blocking == false` or a negative timeout.
  bool acquire(bool blocking, std::optional<double> timeout);
  // Throws ValueError when the lock is not held ("release unlocked lock").
  void release();
  bool locked() const;

 private:
  mutable std::mutex mutex_;
  std::condition_variable released_;
  bool locked_ = false;
};

// Python `threading.RLock`: re-entrant, owned by the server thread that acquired it (that is, by
// one thread of one client).
class RLock {
 public:
  RLock() = default;
  static std::span<const detail::Method<RLock>> exposed_methods();

  // As Lock::acquire; the owner may acquire again (one more level to release).
  bool acquire(bool blocking, std::optional<double> timeout);
  // Ends one level. Throws ValueError when the caller does not own the lock.
  void release();
  // Whether some thread holds the lock.
  bool locked() const;

 private:
  mutable std::mutex mutex_;
  std::condition_variable released_;
  std::uint64_t owner_ = 0;  // the holder's server-thread number (0: free)
  std::uint64_t count_ = 0;
};

// Python `threading.Semaphore(value)`: a counter; acquire waits while it is zero.
class Semaphore {
 public:
  // Throws ValueError for a negative value.
  explicit Semaphore(std::int64_t value = 1);
  static std::span<const detail::Method<Semaphore>> exposed_methods();

  // Decrements the counter; waits while it is zero, woken by a release, at most `timeout`
  // seconds (a negative timeout tries once). Throws ValueError for a timeout with
  // `blocking == false`.
  bool acquire(bool blocking, std::optional<double> timeout);
  // Increments the counter (any client may). A BoundedSemaphore throws ValueError above its
  // initial value.
  void release();

 protected:
  Semaphore(std::int64_t value, bool bounded);

 private:
  mutable std::mutex mutex_;
  std::condition_variable released_;
  std::int64_t value_;
  std::int64_t initial_;
  bool bounded_;
};

// Python `threading.BoundedSemaphore(value)`.
class BoundedSemaphore : public Semaphore {
 public:
  explicit BoundedSemaphore(std::int64_t value = 1) : Semaphore(value, /*bounded=*/true) {}
  static std::span<const detail::Method<BoundedSemaphore>> exposed_methods();

  // Redeclared so that their member pointers name this class (detail::dispatch needs that).
  bool acquire(bool blocking, std::optional<double> timeout) {
    return Semaphore::acquire(blocking, timeout);
  }
  void release() { Semaphore::release(); }
};

// Python `threading.Event`.
class Event {
 public:
  Event() = default;
  static std::span<const detail::Method<Event>> exposed_methods();

  bool is_set() const;
  // Sets the flag and wakes every waiter.
  void set();
  void clear();
  // Waits until the flag is set (woken by set()), at most `timeout` seconds; returns the flag.
  bool wait(std::optional<double> timeout);

 private:
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  bool flag_ = false;
};

// Python `threading.Condition()`: a condition variable with its own RLock.
class Condition {
 public:
  Condition() = default;
  static std::span<const detail::Method<Condition>> exposed_methods();

  // The RLock's acquire and release (see RLock).
  bool acquire(bool blocking, std::optional<double> timeout);
  void release();
  // Lets go of the lock (every level), waits until notified, at most `timeout` seconds, then
  // takes the lock back with its levels; false when the timeout ran out. Throws ValueError when
  // the caller does not own the lock.
  bool wait(std::optional<double> timeout);
  // Wakes up to `n` waiters (the oldest first). Throws ValueError when the caller does not own
  // the lock.
  void notify(std::int64_t n);
  void notify_all();

 private:
  struct Waiter {
    bool notified = false;
  };
  [[nodiscard]] bool owned_by_caller() const;

  mutable std::mutex mutex_;
  std::condition_variable changed_;  // the lock was released, or a waiter was notified
  std::uint64_t owner_ = 0;
  std::uint64_t count_ = 0;
  std::list<Waiter*> waiters_;
};

// Python `threading.Barrier(parties, timeout=None)` (no action).
class Barrier {
 public:
  // Throws ValueError when `parties` < 1.
  explicit Barrier(std::int64_t parties, std::optional<double> timeout = std::nullopt);
  static std::span<const detail::Method<Barrier>> exposed_methods();

  // Waits until `parties` clients are waiting, then releases them all; returns this caller's
  // arrival index (0 .. parties-1). `timeout` (or, when nullopt, the barrier's own) running out
  // breaks the barrier. Throws BrokenBarrierError when the barrier is or becomes broken (abort,
  // reset while waiting, a timeout).
  std::int64_t wait(std::optional<double> timeout);
  // Back to the empty state; the clients waiting now get BrokenBarrierError.
  void reset();
  // Breaks the barrier: current and future waits throw BrokenBarrierError until reset().
  void abort();
  std::int64_t parties() const;
  // How many clients are waiting now.
  std::int64_t n_waiting() const;
  bool broken() const;

 private:
  enum class State { kFilling, kDraining, kResetting, kBroken };
  void break_locked();

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::int64_t parties_;
  std::optional<double> timeout_;
  std::int64_t count_ = 0;
  State state_ = State::kFilling;
};

// Python `queue.Queue(maxsize)` of encoded items (the proxy encodes and decodes them); also the
// JoinableQueue (task_done, join), as in Python's SyncManager.
class Queue {
 public:
  // At most `maxsize` items; unbounded when `maxsize` <= 0.
  explicit Queue(std::int64_t maxsize = 0);
  static std::span<const detail::Method<Queue>> exposed_methods();

  // Appends `item`. With `block`, waits while the queue is full (woken by a get), at most
  // `timeout` seconds; throws Full when it ran out, or at once without `block` (the timeout is
  // then ignored). Throws ValueError for a negative timeout, ShutDown after shutdown().
  void put(std::string item, bool block, std::optional<double> timeout);
  // Removes and returns the oldest item; waits, and throws Empty, as put does for a full queue.
  // Throws ShutDown after shutdown() once the queue is empty.
  std::string get(bool block, std::optional<double> timeout);
  std::int64_t qsize() const;
  bool empty() const;
  bool full() const;
  std::int64_t maxsize() const;
  // Ends one task; throws ValueError when called more times than items were put.
  void task_done();
  // Waits until every item put has had its task_done() (woken by the last one), at most
  // `timeout` seconds; false when it ran out.
  bool join(std::optional<double> timeout);
  // Python 3.13's shutdown: puts throw ShutDown from now on, gets once the queue is empty;
  // `immediate` also drops the items (counted as done). Wakes every blocked put, get and join.
  void shutdown(bool immediate);
  bool is_shutdown() const;

 private:
  mutable std::mutex mutex_;
  std::condition_variable not_empty_;
  std::condition_variable not_full_;
  std::condition_variable all_done_;
  std::deque<std::string> items_;
  std::int64_t maxsize_;
  std::int64_t unfinished_ = 0;
  bool shut_down_ = false;
};

}  // namespace mproc::managed
