#include "mproc/event.h"

#include <climits>
#include <cstdio>

#include "sync_state.h"

namespace mproc {

using detail::EventState;
using detail::SyncKind;

namespace {

constexpr std::uint32_t kFlag = 1;
constexpr std::uint32_t kGeneration = 2;  // the generation lives in bits 1..31

}  // namespace

Event::Event() : state_(nullptr) {
  auto [segment, state] = detail::create_state<EventState>();
  segment_ = std::move(segment);
  state_ = state;
}

Event Event::attach(std::string_view name) {
  auto [segment, state] = detail::attach_state<EventState>(name, SyncKind::kEvent, "Event");
  return Event(std::move(segment), state);
}

void Event::set() {
  std::uint32_t w = state_->word.load(std::memory_order_relaxed);
  do {
    if (w & kFlag) return;
  } while (!state_->word.compare_exchange_weak(
      w, (w + kGeneration) | kFlag, std::memory_order_seq_cst, std::memory_order_relaxed));
  if (state_->sleepers.load(std::memory_order_seq_cst) != 0) {
    detail::futex_wake(state_->word, INT_MAX);
  }
}

void Event::clear() { state_->word.fetch_and(~kFlag, std::memory_order_relaxed); }

bool Event::is_set() const noexcept {
  return (state_->word.load(std::memory_order_acquire) & kFlag) != 0;
}

bool Event::wait() { return wait(Deadline::never()); }

bool Event::wait(const Deadline& deadline) {
  EventState& s = *state_;
  const std::uint32_t start = s.word.load(std::memory_order_acquire);
  if (start & kFlag) return true;
  // True once the flag is up or a set() happened since we started (the generation moved).
  auto done = [&] { return s.word.load(std::memory_order_acquire) != start; };
  auto result = [&] {
    std::uint32_t w = s.word.load(std::memory_order_acquire);
    return (w & kFlag) != 0 || (w & ~kFlag) != (start & ~kFlag);
  };
  if (deadline.expired()) return false;
  if (detail::spin_until(done, 100) && result()) return true;
  for (;;) {
    s.sleepers.fetch_add(1, std::memory_order_seq_cst);
    std::uint32_t w = s.word.load(std::memory_order_seq_cst);
    bool woke = true;
    // Sleep only while nothing happened; a clear() alone changes nothing we care about.
    if (w == start) woke = detail::futex_wait(s.word, start, deadline);
    s.sleepers.fetch_sub(1, std::memory_order_relaxed);
    if (result()) return true;
    if (!woke || deadline.expired()) return false;
  }
}

std::string Event::repr() const {
  char address[32];
  std::snprintf(address, sizeof address, "%p", static_cast<const void*>(state_));
  return std::string("<Event at ") + address + (is_set() ? " set>" : " unset>");
}

}  // namespace mproc
