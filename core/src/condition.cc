// The algorithm. Waiters register while holding the lock, so registration and notify are
// serialised by the lock itself. A waiter arriving in epoch e is "current"; notify() turns every
// current waiter into a "pending" (eligible) one by bumping the epoch, then moves k = min(n,
// pending) of them into `tokens`: k wake-ups that only eligible waiters (epoch != e) may take, by
// an atomic decrement. So a notify can never wake someone who started waiting after it, and
// wakes exactly k. A waiter that times out takes the lock back and then either finds a token
// (it was notified in the meantime: it returns true) or removes itself from the count it is in.
// Invariant (under the lock): eligible waiters still waiting == pending + tokens.
// Current waiters sleep on `epoch`, eligible ones on `tokens`; notify wakes all of the former
// (they become eligible) and k of the latter.
#include "mproc/condition.h"

#include <climits>
#include <cstring>

#include "mproc/errors.h"

#include "sync_state.h"

namespace mproc {

using detail::ConditionState;
using detail::SyncKind;

namespace {

bool take_token(ConditionState& s) {
  std::uint32_t t = s.tokens.load(std::memory_order_relaxed);
  while (t > 0) {
    if (s.tokens.compare_exchange_weak(t, t - 1, std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
      return true;
    }
  }
  return false;
}

}  // namespace

Condition::Condition() : lock_(RLock()) { init(); }
Condition::Condition(Lock lock) : lock_(std::move(lock)) { init(); }
Condition::Condition(RLock lock) : lock_(std::move(lock)) { init(); }

void Condition::init() {
  auto [segment, state] = detail::create_state<ConditionState>();
  const std::string& lock_name = base().name();
  if (lock_name.size() >= detail::kMaxLockName) throw ValueError("lock name too long");
  std::memcpy(state->lock_name, lock_name.data(), lock_name.size());
  state->lock_kind = std::holds_alternative<Lock>(lock_) ? SyncKind::kLock : SyncKind::kRLock;
  segment_ = std::move(segment);
  state_ = state;
}

Condition Condition::attach(std::string_view name) {
  auto [segment, state] =
      detail::attach_state<ConditionState>(name, SyncKind::kCondition, "Condition");
  std::string_view lock_name(state->lock_name, strnlen(state->lock_name, detail::kMaxLockName));
  if (state->lock_kind == SyncKind::kLock) {
    return Condition(std::move(segment), state, Lock::attach(lock_name));
  }
  return Condition(std::move(segment), state, RLock::attach(lock_name));
}

bool Condition::wait(const Deadline& deadline) {
  ConditionState& s = *state_;
  LockBase& lock = base();
  if (!lock.is_mine()) throw ValueError("cannot wait on a Condition without holding its lock");
  const std::uint32_t epoch = s.epoch.load(std::memory_order_relaxed);
  s.current.fetch_add(1, std::memory_order_relaxed);
  const std::uint32_t levels = lock.release_all();

  bool notified = false;
  while (!deadline.expired()) {
    if (s.epoch.load(std::memory_order_acquire) == epoch) {
      // Not yet eligible: wait for a notify to end our epoch.
      if (!detail::futex_wait(s.epoch, epoch, deadline)) break;
      continue;
    }
    if (take_token(s)) {
      notified = true;
      // A waiter woken for a token but killed before taking it would leave that token to
      // sleepers nobody wakes: pass on what is left.
      if (s.tokens.load(std::memory_order_relaxed) > 0) detail::futex_wake(s.tokens, 1);
      break;
    }
    if (!detail::futex_wait(s.tokens, 0, deadline)) break;
  }

  lock.restore(levels);
  if (!notified) {
    // Timed out. With the lock held again, the counts cannot move under us.
    if (s.epoch.load(std::memory_order_relaxed) == epoch) {
      s.current.fetch_sub(1, std::memory_order_relaxed);
    } else if (take_token(s)) {
      notified = true;  // a notify chose us while we were timing out
    } else if (s.pending.load(std::memory_order_relaxed) > 0) {
      s.pending.fetch_sub(1, std::memory_order_relaxed);
    }
  }
  return notified;
}

void Condition::notify(std::uint32_t n) {
  ConditionState& s = *state_;
  if (!base().is_mine()) throw ValueError("cannot notify on a Condition without holding its lock");
  const std::uint32_t current = s.current.exchange(0, std::memory_order_relaxed);
  std::uint32_t pending = s.pending.load(std::memory_order_relaxed) + current;
  const std::uint32_t k = n < pending ? n : pending;
  s.pending.store(pending - k, std::memory_order_relaxed);
  if (k > 0) s.tokens.fetch_add(k, std::memory_order_release);
  if (current > 0) {
    s.epoch.fetch_add(1, std::memory_order_release);
    detail::futex_wake(s.epoch, INT_MAX);
  }
  if (k > 0) detail::futex_wake(s.tokens, k > INT_MAX ? INT_MAX : static_cast<int>(k));
}

std::string Condition::repr() const {
  const std::string lock_repr = std::visit([](const auto& l) { return l.repr(); }, lock_);
  const std::uint32_t sleeping = state_->current.load(std::memory_order_relaxed) +
                                 state_->pending.load(std::memory_order_relaxed);
  return "<Condition(" + lock_repr + ", " + std::to_string(sleeping) + ")>";
}

}  // namespace mproc
