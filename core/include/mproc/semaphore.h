// mproc/semaphore.h
//
// `Semaphore` and `BoundedSemaphore`: a counter shared between processes, like Python's
// `multiprocessing.Semaphore` and `multiprocessing.BoundedSemaphore`.
//
//   mproc::Semaphore slots(2);
//   slots.acquire();            // 2 -> 1; blocks at 0 until someone releases
//   slots.release();            // 1 -> 2 (a Semaphore may go above its initial value)
//   mproc::BoundedSemaphore b(2);
//   b.release();                // ValueError: above the initial value
//
// A handle: copies share one counter, kept in a small shared-memory segment owned by the creating
// process; `attach(name())` reaches it from another process. Anyone may release (no owner).
//
// Robustness: the counter is a single atomic word with a futex, no mutex inside, so a process
// killed at any point cannot leave it locked or half-updated; the count it held is simply not
// given back (as in Python). One narrow window remains: a waiter killed after release() woke it
// but before it took the unit leaves that unit free while the other sleepers sleep on, until the
// next acquire() or release() (a woken waiter wakes another while units are left).
//
// Thread safety: every member function may be called from any thread of any process.
// Fork safety: a semaphore created before a fork is shared by parent and child.
// Memory ordering: a release() happens-before the acquire() that takes what it released.
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
struct SemaphoreState;
}  // namespace detail

class Semaphore {
 public:
  // A new semaphore with `value` (throws ValueError above 2^31 - 1).
  explicit Semaphore(std::uint32_t value = 1);
  // A handle to no semaphore, to load into (see detail/blank_handle.h).
  explicit Semaphore(detail::BlankHandle) noexcept : Semaphore(SharedSegment{}, nullptr) {}
  // The semaphore (or bounded semaphore) created elsewhere as `name`.
  [[nodiscard]] static Semaphore attach(std::string_view name);

  // Takes one unit: blocks while the value is 0 (`block == true`) or tries once. Wakes on a
  // release(). Returns whether a unit was taken.
  bool acquire(bool block = true);
  // Waits at most until `deadline`; false when it passed.
  bool acquire(const Deadline& deadline);
  template <class Rep, class Period>
  bool acquire(std::chrono::duration<Rep, Period> timeout) {
    return acquire(Deadline::after(timeout));
  }
  // `acquire(0.5)` would silently mean `acquire(true)`: say `acquire(500ms)`.
  template <class T>
  requires(std::is_arithmetic_v<T> && !std::is_same_v<T, bool>) bool acquire(T) = delete;

  // Gives back `n` units and wakes up to `n` waiters. Throws ValueError if that would exceed the
  // bound of a BoundedSemaphore, or 2^31 - 1.
  void release(std::uint32_t n = 1);

  [[nodiscard]] std::uint32_t get_value() const noexcept;
  [[nodiscard]] const std::string& name() const noexcept { return segment_.name(); }

  // Lockable / TimedLockable.
  void lock() { acquire(true); }
  void unlock() { release(); }
  [[nodiscard]] bool try_lock() { return acquire(false); }
  template <class Rep, class Period>
  [[nodiscard]] bool try_lock_for(std::chrono::duration<Rep, Period> timeout) {
    return acquire(Deadline::after(timeout));
  }

  // `<Semaphore(value=2)>`, or `<BoundedSemaphore(value=1, maxvalue=2)>`.
  [[nodiscard]] std::string repr() const;

  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    detail::serialize_by_name(ar, *this);
  }

 protected:
  Semaphore(std::uint32_t value, std::uint32_t max_value);
  Semaphore(SharedSegment segment, detail::SemaphoreState* state)
      : segment_(std::move(segment)), state_(state) {}

  SharedSegment segment_;
  detail::SemaphoreState* state_;
};

// Python `multiprocessing.BoundedSemaphore`: release() above the initial value throws ValueError.
class BoundedSemaphore : public Semaphore {
 public:
  explicit BoundedSemaphore(std::uint32_t value = 1);
  explicit BoundedSemaphore(detail::BlankHandle blank) noexcept : Semaphore(blank) {}
  [[nodiscard]] static BoundedSemaphore attach(std::string_view name);

  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    detail::serialize_by_name(ar, *this);
  }

 private:
  using Semaphore::Semaphore;
};

inline std::ostream& operator<<(std::ostream& os, const Semaphore& s) { return os << s.repr(); }

}  // namespace mproc
