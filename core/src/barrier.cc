// threading.Barrier's algorithm, over a robust mutex and a futex word used as a broadcast-only
// condition variable (every change of state wakes everyone; each re-checks).
#include "mproc/barrier.h"

#include <climits>
#include <cstdio>

#include "mproc/errors.h"
#include "mproc/log.h"

#include "sync_state.h"

namespace mproc {

using detail::BarrierState;
using detail::LockResult;
using detail::SyncKind;

namespace {

constexpr std::int32_t kFilling = 0;
constexpr std::int32_t kDraining = 1;
constexpr std::int32_t kResetting = -1;
constexpr std::int32_t kBroken = -2;

void notify_all(BarrierState& s) {
  s.seq.fetch_add(1, std::memory_order_release);
  detail::futex_wake(s.seq, INT_MAX);
}

void break_barrier(BarrierState& s) {
  s.state = kBroken;
  notify_all(s);
}

// Holds the barrier's mutex. A holder that died may have left the state half-updated: the only
// safe repair is to break the barrier.
class Guard {
 public:
  explicit Guard(BarrierState& s) : s_(s) { lock(); }
  ~Guard() {
    if (held_) s_.mutex.unlock();
  }
  Guard(const Guard&) = delete;
  Guard& operator=(const Guard&) = delete;

  // Releases the mutex, sleeps until a notify_all() or `deadline`, takes it back. False on
  // timeout.
  bool wait(const Deadline& deadline) {
    const std::uint32_t seq = s_.seq.load(std::memory_order_relaxed);
    held_ = false;
    s_.mutex.unlock();
    bool woke = detail::futex_wait(s_.seq, seq, deadline);
    lock();
    return woke;
  }

 private:
  void lock() {
    if (s_.mutex.lock() == LockResult::kOwnerDied) {
      get_logger()->warn("Barrier: a process died inside it (in its action?); it is broken");
      break_barrier(s_);
    }
    held_ = true;
  }
  BarrierState& s_;
  bool held_ = false;
};

}  // namespace

Barrier::Barrier(std::uint32_t parties, std::function<void()> action,
                 std::optional<std::chrono::nanoseconds> timeout)
    : action_(std::move(action)) {
  if (parties == 0 || parties > INT_MAX) throw ValueError("a Barrier needs 1 or more parties");
  auto [segment, state] = detail::create_state<BarrierState>();
  state->parties = parties;
  state->default_timeout_ns = timeout ? (timeout->count() > 0 ? timeout->count() : 0) : -1;
  segment_ = std::move(segment);
  state_ = state;
}

Barrier Barrier::attach(std::string_view name, std::function<void()> action) {
  auto [segment, state] = detail::attach_state<BarrierState>(name, SyncKind::kBarrier, "Barrier");
  return Barrier(std::move(segment), state, std::move(action));
}

BarrierState& Barrier::state() const {
  if (state_ == nullptr) throw ValueError("an empty Barrier handle (default-constructed)");
  return *state_;
}

int Barrier::wait() {
  const std::int64_t ns = state().default_timeout_ns;
  return wait(ns < 0 ? Deadline::never() : Deadline::after(std::chrono::nanoseconds(ns)));
}

int Barrier::wait(const Deadline& deadline) {
  BarrierState& s = state();
  Guard guard(s);
  // Wait while the previous pass drains or a reset completes.
  while (s.state == kDraining || s.state == kResetting) guard.wait(Deadline::never());
  if (s.state < 0) throw BrokenBarrierError();
  const auto index = static_cast<int>(s.count++);
  auto leave = [&] {
    // The last one out of a draining or resetting barrier makes it ready for the next pass.
    if (--s.count == 0 && (s.state == kDraining || s.state == kResetting)) {
      s.state = kFilling;
      notify_all(s);
    }
  };
  try {
    if (static_cast<std::uint32_t>(index) + 1 == s.parties) {
      try {
        if (action_) action_();
      } catch (...) {
        break_barrier(s);
        throw;
      }
      s.state = kDraining;
      notify_all(s);
    } else {
      while (s.state == kFilling) {
        if (!guard.wait(deadline) && s.state == kFilling) {
          break_barrier(s);
          throw BrokenBarrierError("barrier wait timed out");
        }
      }
      if (s.state < 0) throw BrokenBarrierError();
    }
  } catch (...) {
    leave();
    throw;
  }
  leave();
  return index;
}

void Barrier::reset() {
  BarrierState& s = state();
  Guard guard(s);
  if (s.count > 0) {
    // Waiters leave with BrokenBarrierError; the last one out sets it filling again.
    if (s.state == kFilling || s.state == kBroken) s.state = kResetting;
  } else {
    s.state = kFilling;
  }
  notify_all(s);
}

void Barrier::abort() {
  Guard guard(state());
  break_barrier(state());
}

std::uint32_t Barrier::parties() const { return state().parties; }

std::uint32_t Barrier::n_waiting() const {
  Guard guard(state());
  return state_->state == kFilling ? state_->count : 0;
}

bool Barrier::broken() const {
  Guard guard(state());
  return state_->state == kBroken;
}

std::string Barrier::repr() const {
  char address[32];
  std::snprintf(address, sizeof address, "%p", static_cast<const void*>(state_));
  if (broken()) return std::string("<Barrier at ") + address + ": broken>";
  return std::string("<Barrier at ") + address + ": waiters=" + std::to_string(n_waiting()) + "/" +
         std::to_string(parties()) + ">";
}

}  // namespace mproc
