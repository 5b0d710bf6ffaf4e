#include "mproc/managed_sync.h"

#include <atomic>
#include <utility>

#include "mproc/errors.h"

#include "managed_wait.h"

namespace mproc::managed {

using detail::dispatch;
using detail::Method;

namespace {

// The calling server thread's number: unlike std::thread::id, never reused by a later thread, so
// an RLock held by a thread that has ended cannot be released by a new one that got its id.
std::uint64_t this_thread_number() {
  static std::atomic<std::uint64_t> next{1};
  thread_local const std::uint64_t number = next.fetch_add(1, std::memory_order_relaxed);
  return number;
}

}  // namespace

// ---- Lock

std::span<const Method<Lock>> Lock::exposed_methods() {
  static const Method<Lock> methods[] = {
      {"acquire", &dispatch<&Lock::acquire>},
      {"release", &dispatch<&Lock::release>},
      {"locked", &dispatch<&Lock::locked>},
  };
  return methods;
}

bool Lock::acquire(bool blocking, std::optional<double> timeout) {
  Deadline deadline = wait_detail::acquire_deadline(blocking, timeout, /*negative_is_error=*/true);
  std::unique_lock lock(mutex_);
  if (!wait_detail::wait_until(released_, lock, deadline, [&] { return !locked_; })) return false;
  locked_ = true;
  return true;
}

void Lock::release() {
  {
    std::lock_guard lock(mutex_);
    if (!locked_) throw ValueError("release unlocked lock");
    locked_ = false;
  }
  released_.notify_one();
}

bool Lock::locked() const {
  std::lock_guard lock(mutex_);
  return locked_;
}

// ---- RLock

std::span<const Method<RLock>> RLock::exposed_methods() {
  static const Method<RLock> methods[] = {
      {"acquire", &dispatch<&RLock::acquire>},
      {"release", &dispatch<&RLock::release>},
      {"locked", &dispatch<&RLock::locked>},
  };
  return methods;
}

bool RLock::acquire(bool blocking, std::optional<double> timeout) {
  Deadline deadline = wait_detail::acquire_deadline(blocking, timeout, /*negative_is_error=*/true);
  const std::uint64_t me = this_thread_number();
  std::unique_lock lock(mutex_);
  if (owner_ == me) {
    ++count_;
    return true;
  }
  if (!wait_detail::wait_until(released_, lock, deadline, [&] { return owner_ == 0; }))
    return false;
  owner_ = me;
  count_ = 1;
  return true;
}

void RLock::release() {
  {
    std::lock_guard lock(mutex_);
    if (owner_ != this_thread_number() || count_ == 0)
      throw ValueError("cannot release un-acquired lock");
    if (--count_ > 0) return;
    owner_ = 0;
  }
  released_.notify_one();
}

bool RLock::locked() const {
  std::lock_guard lock(mutex_);
  return owner_ != 0;
}

// ---- Semaphore, BoundedSemaphore

Semaphore::Semaphore(std::int64_t value) : Semaphore(value, /*bounded=*/false) {}

Semaphore::Semaphore(std::int64_t value, bool bounded)
    : value_(value), initial_(value), bounded_(bounded) {
  if (value < 0) throw ValueError("semaphore initial value must be >= 0");
}

std::span<const Method<Semaphore>> Semaphore::exposed_methods() {
  static const Method<Semaphore> methods[] = {
      {"acquire", &dispatch<&Semaphore::acquire>},
      {"release", &dispatch<&Semaphore::release>},
  };
  return methods;
}

std::span<const Method<BoundedSemaphore>> BoundedSemaphore::exposed_methods() {
  static const Method<BoundedSemaphore> methods[] = {
      {"acquire", &dispatch<&BoundedSemaphore::acquire>},
      {"release", &dispatch<&BoundedSemaphore::release>},
  };
  return methods;
}

bool Semaphore::acquire(bool blocking, std::optional<double> timeout) {
  Deadline deadline = wait_detail::acquire_deadline(blocking, timeout, /*negative_is_error=*/false);
  std::unique_lock lock(mutex_);
  if (!wait_detail::wait_until(released_, lock, deadline, [&] { return value_ > 0; })) return false;
  --value_;
  return true;
}

void Semaphore::release() {
  {
    std::lock_guard lock(mutex_);
    if (bounded_ && value_ >= initial_) throw ValueError("Semaphore released too many times");
    ++value_;
  }
  released_.notify_one();
}

// ---- Event

std::span<const Method<Event>> Event::exposed_methods() {
  static const Method<Event> methods[] = {
      {"is_set", &dispatch<&Event::is_set>},
      {"set", &dispatch<&Event::set>},
      {"clear", &dispatch<&Event::clear>},
      {"wait", &dispatch<&Event::wait>},
  };
  return methods;
}

bool Event::is_set() const {
  std::lock_guard lock(mutex_);
  return flag_;
}

void Event::set() {
  {
    std::lock_guard lock(mutex_);
    flag_ = true;
  }
  changed_.notify_all();
}

void Event::clear() {
  std::lock_guard lock(mutex_);
  flag_ = false;
}

bool Event::wait(std::optional<double> timeout) {
  Deadline deadline = wait_detail::wait_deadline(timeout);
  std::unique_lock lock(mutex_);
  return wait_detail::wait_until(changed_, lock, deadline, [&] { return flag_; });
}

// ---- Condition

std::span<const Method<Condition>> Condition::exposed_methods() {
  static const Method<Condition> methods[] = {
      {"acquire", &dispatch<&Condition::acquire>},
      {"release", &dispatch<&Condition::release>},
      {"wait", &dispatch<&Condition::wait>},
      {"notify", &dispatch<&Condition::notify>},
      {"notify_all", &dispatch<&Condition::notify_all>},
  };
  return methods;
}

bool Condition::owned_by_caller() const { return owner_ == this_thread_number() && count_ > 0; }

bool Condition::acquire(bool blocking, std::optional<double> timeout) {
  Deadline deadline = wait_detail::acquire_deadline(blocking, timeout, /*negative_is_error=*/true);
  const std::uint64_t me = this_thread_number();
  std::unique_lock lock(mutex_);
  if (owner_ == me) {
    ++count_;
    return true;
  }
  if (!wait_detail::wait_until(changed_, lock, deadline, [&] { return owner_ == 0; })) return false;
  owner_ = me;
  count_ = 1;
  return true;
}

void Condition::release() {
  {
    std::lock_guard lock(mutex_);
    if (!owned_by_caller()) throw ValueError("cannot release un-acquired lock");
    if (--count_ > 0) return;
    owner_ = 0;
  }
  changed_.notify_all();
}

bool Condition::wait(std::optional<double> timeout) {
  Deadline deadline = wait_detail::wait_deadline(timeout);
  const std::uint64_t me = this_thread_number();
  std::unique_lock lock(mutex_);
  if (!owned_by_caller()) throw ValueError("cannot wait on un-acquired lock");
  // Registered before the lock is let go, so a notify that follows our release reaches us.
  Waiter waiter;
  auto it = waiters_.insert(waiters_.end(), &waiter);
  const std::uint64_t levels = std::exchange(count_, 0);
  owner_ = 0;
  changed_.notify_all();
  const bool notified =
      wait_detail::wait_until(changed_, lock, deadline, [&] { return waiter.notified; });
  if (!notified) waiters_.erase(it);  // a notify removes the waiters it wakes
  // Python's wait takes the lock back whatever happened, without a timeout.
  changed_.wait(lock, [&] { return owner_ == 0; });
  owner_ = me;
  count_ = levels;
  return notified;
}

void Condition::notify(std::int64_t n) {
  {
    std::lock_guard lock(mutex_);
    if (!owned_by_caller()) throw ValueError("cannot notify on un-acquired lock");
    for (; n > 0 && !waiters_.empty(); --n) {
      waiters_.front()->notified = true;
      waiters_.pop_front();
    }
  }
  changed_.notify_all();
}

void Condition::notify_all() {
  {
    std::lock_guard lock(mutex_);
    if (!owned_by_caller()) throw ValueError("cannot notify on un-acquired lock");
    for (Waiter* w : waiters_) w->notified = true;
    waiters_.clear();
  }
  changed_.notify_all();
}

// ---- Barrier (threading.Barrier's state machine)

Barrier::Barrier(std::int64_t parties, std::optional<double> timeout)
    : parties_(parties), timeout_(timeout) {
  if (parties < 1) throw ValueError("parties must be >= 1");
}

std::span<const Method<Barrier>> Barrier::exposed_methods() {
  static const Method<Barrier> methods[] = {
      {"wait", &dispatch<&Barrier::wait>},           {"reset", &dispatch<&Barrier::reset>},
      {"abort", &dispatch<&Barrier::abort>},         {"parties", &dispatch<&Barrier::parties>},
      {"n_waiting", &dispatch<&Barrier::n_waiting>}, {"broken", &dispatch<&Barrier::broken>},
  };
  return methods;
}

std::int64_t Barrier::wait(std::optional<double> timeout) {
  Deadline deadline = wait_detail::wait_deadline(timeout ? timeout : timeout_);
  std::unique_lock lock(mutex_);
  // Those of the previous cycle are still leaving (or a reset is under way): wait for them.
  changed_.wait(lock, [&] { return state_ != State::kDraining && state_ != State::kResetting; });
  if (state_ == State::kBroken) throw BrokenBarrierError();
  const std::int64_t index = count_++;
  // Leaving, however it happens: the last one out of a drained or reset barrier refills it.
  struct Exit {
    Barrier& b;
    ~Exit() {
      if (--b.count_ == 0 && (b.state_ == State::kDraining || b.state_ == State::kResetting)) {
        b.state_ = State::kFilling;
        b.changed_.notify_all();
      }
    }
  } exit{*this};
  if (index + 1 == parties_) {
    state_ = State::kDraining;
    changed_.notify_all();
    return index;
  }
  if (!wait_detail::wait_until(changed_, lock, deadline,
                               [&] { return state_ != State::kFilling; })) {
    break_locked();
    throw BrokenBarrierError("barrier wait timed out");
  }
  if (state_ == State::kBroken || state_ == State::kResetting) throw BrokenBarrierError();
  return index;
}

void Barrier::reset() {
  {
    std::lock_guard lock(mutex_);
    if (count_ > 0) {
      if (state_ == State::kFilling || state_ == State::kBroken) state_ = State::kResetting;
    } else {
      state_ = State::kFilling;
    }
  }
  changed_.notify_all();
}

void Barrier::abort() {
  std::lock_guard lock(mutex_);
  break_locked();
}

void Barrier::break_locked() {
  state_ = State::kBroken;
  changed_.notify_all();
}

std::int64_t Barrier::parties() const { return parties_; }

std::int64_t Barrier::n_waiting() const {
  std::lock_guard lock(mutex_);
  return state_ == State::kFilling ? count_ : 0;
}

bool Barrier::broken() const {
  std::lock_guard lock(mutex_);
  return state_ == State::kBroken;
}

}  // namespace mproc::managed
