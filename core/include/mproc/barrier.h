// mproc/barrier.h
//
// `Barrier`: `parties` processes (or threads) wait until all of them have arrived, then all go
// on together; reusable pass after pass. Python's `multiprocessing.Barrier` (`threading.Barrier`
// semantics: filling, draining, resetting, broken).
//
//   mproc::Barrier barrier(3, [] { std::puts("all here"); });
//   // in each of 3 processes:
//   int index = barrier.wait(5s);     // 0..2, a different one each; throws BrokenBarrierError
//
// A handle: copies share one barrier, kept in a small shared-memory segment owned by the creating
// process; `attach(name())` reaches it from another process. The action is a callable of this
// process (a forked child has a copy); a process that attaches may pass its own.
//
// The action runs once per pass, in the last party to arrive, before anyone is released. If it
// throws, the barrier breaks and the exception reaches that party's wait().
//
// Robustness: the barrier's state is guarded by a robust mutex; if a process dies holding it
// (in the action, say) the barrier breaks as soon as another party takes the mutex (a new
// arrival, a waiter's timeout, abort(), reset()), and every waiter then gets BrokenBarrierError
// (nothing wakes sleeping waiters at the moment of the death itself). A party
// killed while waiting is still counted, as in Python: the others leave by their timeout
// (BrokenBarrierError), and the barrier stays unusable until every party that entered is gone.
//
// Thread safety: every member function may be called from any thread of any process.
// Fork safety: a barrier created before a fork is shared by parent and child.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>

#include "mproc/deadline.h"
#include "mproc/detail/blank_handle.h"
#include "mproc/shm.h"

namespace mproc {

namespace detail {
struct BarrierState;
}  // namespace detail

class Barrier {
 public:
  // An empty handle, something to deserialize into (a task's parameter): every other member
  // throws ValueError on it.
  Barrier() = default;
  // Throws ValueError when `parties` is 0. `timeout` is the default for wait().
  explicit Barrier(std::uint32_t parties, std::function<void()> action = {},
                   std::optional<std::chrono::nanoseconds> timeout = std::nullopt);
  [[nodiscard]] static Barrier attach(std::string_view name, std::function<void()> action = {});

  // Waits for the other parties, at most the default timeout (if any). Returns this party's
  // arrival index, 0..parties-1. Wakes when the last party arrives, or on abort(), reset() or
  // another party's timeout. Throws BrokenBarrierError when the barrier is or becomes broken,
  // or the timeout passes (which breaks it for everyone).
  int wait();
  // The same with an explicit deadline instead of the default timeout.
  int wait(const Deadline& deadline);
  template <class Rep, class Period>
  int wait(std::chrono::duration<Rep, Period> timeout) {
    return wait(Deadline::after(timeout));
  }

  // Returns the barrier to its empty state; current waiters get BrokenBarrierError.
  void reset();
  // Breaks the barrier: current and future waiters get BrokenBarrierError until reset().
  void abort();

  [[nodiscard]] std::uint32_t parties() const;
  // How many parties are waiting in the current pass.
  [[nodiscard]] std::uint32_t n_waiting() const;
  [[nodiscard]] bool broken() const;
  [[nodiscard]] const std::string& name() const noexcept { return segment_.name(); }
  // `<Barrier at 0x...: waiters=2/5>` or `<Barrier at 0x...: broken>`.
  [[nodiscard]] std::string repr() const;

  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    detail::serialize_by_name(ar, *this,
                              [this](const std::string& n) { return Barrier::attach(n, action_); });
  }

 private:
  detail::BarrierState& state() const;
  Barrier(SharedSegment segment, detail::BarrierState* state, std::function<void()> action)
      : segment_(std::move(segment)), state_(state), action_(std::move(action)) {}

  SharedSegment segment_;
  detail::BarrierState* state_ = nullptr;
  std::function<void()> action_;
};

inline std::ostream& operator<<(std::ostream& os, const Barrier& b) { return os << b.repr(); }

}  // namespace mproc
