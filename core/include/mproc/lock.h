// mproc/lock.h
//
// `Lock` and `RLock`: mutual exclusion between processes (and threads), like Python's
// `multiprocessing.Lock` and `multiprocessing.RLock`.
//
//   mproc::Lock lock;                      // before the fork: both sides use the same lock
//   {
//     std::scoped_lock hold(lock);         // Lockable and TimedLockable
//     ...
//   }
//   if (lock.acquire(500ms)) { ...; lock.release(); }
//   auto same = mproc::Lock::attach(lock.name());   // in a process that was not forked
//
// A Lock is a handle: copies share one lock, kept in a small shared-memory segment that the
// creating process owns (the segment goes away with the creator's last handle; a process that
// attached keeps its mapping). Objects are "cheap copyable handles", as Python's are.
//
// Ownership (unlike Python's SemLock): the lock belongs to the thread that acquired it, and only
// that thread may release it; `release()` by anyone else throws `ValueError`. A blocking acquire
// by the thread that already holds a `Lock` throws `ValueError` instead of deadlocking (use
// `RLock` to re-enter).
//
// Dead holders: the lock is a robust process-shared mutex. If its holder dies (SIGKILL, a thread
// exiting) while holding it, the next acquirer gets the lock normally and
// `previous_owner_died()` is then true for that hold, so that it can repair whatever the lock
// guarded (the mproc logger also prints a warning). Until someone acquires it again, a lock whose
// holder died still reads `locked()`.
//
// Thread safety: all member functions may be called from any thread of any process.
// Fork safety: a lock created before a fork is shared by parent and child. A lock held across a
// fork stays held by the parent's thread; the child cannot release it.
// Memory ordering: a release() happens-before the acquire() that obtains the lock next.
#pragma once

#include <chrono>
#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <type_traits>

#include "mproc/deadline.h"
#include "mproc/detail/blank_handle.h"
#include "mproc/shm.h"

namespace mproc {

namespace detail {
struct LockState;
}  // namespace detail

class Condition;

// Shared code of Lock and RLock; not used directly.
class LockBase {
 public:
  // Blocks until the lock is held (`block == true`), or tries once (`block == false`).
  // Returns true when the lock is now held. Wakes when the holder releases or dies.
  // Throws ValueError on a blocking acquire that would deadlock (a Lock already held by the
  // caller).
  bool acquire(bool block = true);
  // Waits at most until `deadline`; false when it passed (a past deadline tries once). A Lock
  // the caller already holds makes it wait out the deadline and return false, as in Python;
  // with Deadline::never() it throws ValueError as above.
  bool acquire(const Deadline& deadline);
  template <class Rep, class Period>
  bool acquire(std::chrono::duration<Rep, Period> timeout) {
    return acquire(Deadline::after(timeout));
  }
  // `acquire(0.5)` would silently mean `acquire(true)`: say `acquire(500ms)`.
  template <class T>
  requires(std::is_arithmetic_v<T> && !std::is_same_v<T, bool>) bool acquire(T) = delete;

  // Throws ValueError when the caller does not hold the lock.
  void release();

  // Whether any thread of any process holds the lock.
  [[nodiscard]] bool locked() const noexcept;
  // True while the caller holds the lock and got it from a holder that died holding it.
  [[nodiscard]] bool previous_owner_died() const noexcept;
  // The segment name another process passes to `attach`.
  [[nodiscard]] const std::string& name() const noexcept { return segment_.name(); }

  // Lockable / TimedLockable, for std::lock_guard, std::unique_lock and std::scoped_lock.
  void lock() { acquire(true); }
  void unlock() { release(); }
  [[nodiscard]] bool try_lock() { return acquire(false); }
  template <class Rep, class Period>
  [[nodiscard]] bool try_lock_for(std::chrono::duration<Rep, Period> timeout) {
    return acquire(Deadline::after(timeout));
  }
  template <class Clock2, class Duration>
  [[nodiscard]] bool try_lock_until(std::chrono::time_point<Clock2, Duration> when) {
    if constexpr (std::is_same_v<Clock2, Clock>) {
      return acquire(Deadline::at(std::chrono::time_point_cast<Clock::duration>(when)));
    } else {
      return acquire(Deadline::after(when - Clock2::now()));
    }
  }

 protected:
  LockBase(SharedSegment segment, detail::LockState* state)
      : segment_(std::move(segment)), state_(state) {}
  [[nodiscard]] bool is_mine() const noexcept;
  // For Condition::wait: lets go of every level and returns how many there were.
  std::uint32_t release_all();
  // For Condition::wait: takes the lock again (blocking) with `count` levels.
  void restore(std::uint32_t count);
  [[nodiscard]] std::string owner_repr() const;
  [[nodiscard]] std::uint32_t count() const noexcept;

  SharedSegment segment_;
  detail::LockState* state_;

  friend class Condition;
};

// Python `multiprocessing.Lock`: a non-recursive lock.
class Lock : public LockBase {
 public:
  // A new, unlocked lock in a fresh segment.
  Lock();
  // A handle to no lock, to load into (see detail/blank_handle.h).
  explicit Lock(detail::BlankHandle) noexcept : LockBase(SharedSegment{}, nullptr) {}
  // The lock created elsewhere as `name` (throws ValueError if that segment is not a Lock,
  // std::system_error if it does not exist).
  [[nodiscard]] static Lock attach(std::string_view name);

  // `<Lock(owner=None)>`, `<Lock(owner=1234)>` (a pid: the main thread of that process holds it)
  // or `<Lock(owner=1234|1240)>` (pid|thread id of another thread).
  [[nodiscard]] std::string repr() const;

  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    detail::serialize_by_name(ar, *this);
  }

 private:
  using LockBase::LockBase;
};

// Python `multiprocessing.RLock`: the holder may acquire again; it is free once released as often
// as acquired. A release by a thread that does not hold it, or one release too many, throws
// ValueError (Python: AssertionError / RuntimeError).
class RLock : public LockBase {
 public:
  RLock();
  explicit RLock(detail::BlankHandle) noexcept : LockBase(SharedSegment{}, nullptr) {}
  [[nodiscard]] static RLock attach(std::string_view name);

  // `<RLock(None, 0)>` or `<RLock(owner, count)>`, the owner written as in Lock::repr.
  [[nodiscard]] std::string repr() const;

  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    detail::serialize_by_name(ar, *this);
  }

 private:
  using LockBase::LockBase;
};

inline std::ostream& operator<<(std::ostream& os, const Lock& lock) { return os << lock.repr(); }
inline std::ostream& operator<<(std::ostream& os, const RLock& lock) { return os << lock.repr(); }

}  // namespace mproc
