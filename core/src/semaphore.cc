#include "mproc/semaphore.h"

#include <climits>

#include "mproc/errors.h"

#include "sync_state.h"

namespace mproc {

using detail::SemaphoreState;
using detail::SyncKind;

namespace {

constexpr std::uint32_t kMaxValue = INT_MAX;  // futex_wake counts are ints

bool try_take(SemaphoreState& s) {
  std::uint32_t v = s.value.load(std::memory_order_relaxed);
  while (v > 0) {
    if (s.value.compare_exchange_weak(v, v - 1, std::memory_order_acquire,
                                      std::memory_order_relaxed)) {
      return true;
    }
  }
  return false;
}

}  // namespace

Semaphore::Semaphore(std::uint32_t value) : Semaphore(value, 0) {}

Semaphore::Semaphore(std::uint32_t value, std::uint32_t max_value) : state_(nullptr) {
  if (value > kMaxValue) throw ValueError("semaphore value out of range");
  auto [segment, state] = detail::create_state<SemaphoreState>();
  state->value.store(value, std::memory_order_relaxed);
  state->max_value = max_value;
  segment_ = std::move(segment);
  state_ = state;
}

Semaphore Semaphore::attach(std::string_view name) {
  auto [segment, state] =
      detail::attach_state<SemaphoreState>(name, SyncKind::kSemaphore, "Semaphore");
  return Semaphore(std::move(segment), state);
}

bool Semaphore::acquire(bool block) {
  return block ? acquire(Deadline::never()) : acquire(Deadline::now());
}

bool Semaphore::acquire(const Deadline& deadline) {
  SemaphoreState& s = *state_;
  if (try_take(s)) return true;
  if (deadline.expired()) return false;
  if (detail::spin_until([&] { return try_take(s); }, 100)) return true;
  for (;;) {
    // Announce the sleep before re-checking the value; release() bumps the value before it
    // reads `sleepers` (both seq_cst), so one of the two sees the other: no lost wake-up.
    s.sleepers.fetch_add(1, std::memory_order_seq_cst);
    bool woke = true;
    if (s.value.load(std::memory_order_seq_cst) == 0)
      woke = detail::futex_wait(s.value, 0, deadline);
    s.sleepers.fetch_sub(1, std::memory_order_relaxed);
    if (try_take(s)) {
      // Pass on what is left: if a waiter that release() woke was killed before taking its
      // unit, that unit would otherwise stay unused while others sleep.
      if (s.value.load(std::memory_order_seq_cst) > 0 &&
          s.sleepers.load(std::memory_order_seq_cst) > 0) {
        detail::futex_wake(s.value, 1);
      }
      return true;
    }
    if (!woke || deadline.expired()) return false;
  }
}

void Semaphore::release(std::uint32_t n) {
  if (n == 0) return;
  SemaphoreState& s = *state_;
  const std::uint32_t limit = s.max_value != 0 ? s.max_value : kMaxValue;
  std::uint32_t v = s.value.load(std::memory_order_relaxed);
  do {
    if (n > limit || v > limit - n) {
      throw ValueError(s.max_value != 0 ? "semaphore released too many times"
                                        : "semaphore value out of range");
    }
  } while (!s.value.compare_exchange_weak(v, v + n, std::memory_order_seq_cst,
                                          std::memory_order_relaxed));
  if (s.sleepers.load(std::memory_order_seq_cst) != 0) {
    detail::futex_wake(s.value, static_cast<int>(n));
  }
}

std::uint32_t Semaphore::get_value() const noexcept {
  return state_->value.load(std::memory_order_relaxed);
}

std::string Semaphore::repr() const {
  if (state_->max_value != 0) {
    return "<BoundedSemaphore(value=" + std::to_string(get_value()) +
           ", maxvalue=" + std::to_string(state_->max_value) + ")>";
  }
  return "<Semaphore(value=" + std::to_string(get_value()) + ")>";
}

BoundedSemaphore::BoundedSemaphore(std::uint32_t value) : Semaphore(value, value) {
  if (value == 0) {
    // A bound of 0 would read as "unbounded" in the shared state; Python allows it but such a
    // semaphore can never be acquired nor released.
    throw ValueError("a BoundedSemaphore needs an initial value above 0");
  }
}

BoundedSemaphore BoundedSemaphore::attach(std::string_view name) {
  auto [segment, state] =
      detail::attach_state<SemaphoreState>(name, SyncKind::kSemaphore, "BoundedSemaphore");
  if (state->max_value == 0) {
    throw ValueError("shared segment " + std::string(name) + " holds an unbounded Semaphore");
  }
  return BoundedSemaphore(std::move(segment), state);
}

}  // namespace mproc
