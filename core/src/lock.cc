#include "mproc/lock.h"

#include <thread>

#include "mproc/errors.h"
#include "mproc/log.h"

#include "sync_state.h"

namespace mproc {

using detail::LockResult;
using detail::LockState;
using detail::SyncKind;

bool LockBase::is_mine() const noexcept {
  // Only the holder writes its own id here, so seeing ours means we hold it.
  return state_->owner_tid.load(std::memory_order_relaxed) == detail::this_thread_id();
}

bool LockBase::acquire(bool block) {
  return block ? acquire(Deadline::never()) : acquire(Deadline::now());
}

bool LockBase::acquire(const Deadline& deadline) {
  const pid_t tid = detail::this_thread_id();
  if (state_->owner_tid.load(std::memory_order_relaxed) == tid) {
    if (state_->kind == SyncKind::kRLock) {
      // Only the holder writes `count` while it holds the lock: a plain store, not an atomic
      // read-modify-write (which costs as much as the whole uncontended acquire).
      state_->count.store(state_->count.load(std::memory_order_relaxed) + 1,
                          std::memory_order_relaxed);
      return true;
    }
    // Python's Lock would wait for ever, or until the timeout, for itself.
    if (deadline.is_never()) {
      throw ValueError("cannot acquire a Lock that this thread already holds (use an RLock)");
    }
    std::this_thread::sleep_until(deadline.when());
    return false;
  }
  LockResult result = state_->mutex.try_lock();
  if (result == LockResult::kTimedOut && !deadline.expired()) {
    // The holder is often about to release: a short spin saves a sleep and a wake-up.
    detail::spin_to_lock([&] {
      if (!state_->mutex.looks_free()) return false;
      result = state_->mutex.try_lock();
      return result != LockResult::kTimedOut;
    });
    if (result == LockResult::kTimedOut) result = state_->mutex.lock(deadline);
  }
  if (result == LockResult::kTimedOut) return false;
  if (result == LockResult::kOwnerDied) {
    get_logger()->warn("{} {}: its holder died holding it; taken over by thread {}",
                       state_->kind == SyncKind::kRLock ? "RLock" : "Lock", name(), tid);
  }
  state_->previous_owner_died.store(result == LockResult::kOwnerDied, std::memory_order_relaxed);
  state_->count.store(1, std::memory_order_relaxed);
  state_->owner_pid.store(detail::this_process_id(), std::memory_order_relaxed);
  state_->owner_tid.store(tid, std::memory_order_relaxed);
  return true;
}

void LockBase::release() {
  const pid_t owner = state_->owner_tid.load(std::memory_order_relaxed);
  if (owner != detail::this_thread_id()) {
    if (owner == 0) {
      throw ValueError(state_->kind == SyncKind::kRLock
                           ? "cannot release an un-acquired RLock"
                           : "cannot release an unlocked Lock (released too many times)");
    }
    throw ValueError("cannot release a lock held by another thread or process");
  }
  if (state_->kind == SyncKind::kRLock) {
    // As in acquire: the holder alone writes `count`.
    const std::uint32_t levels = state_->count.load(std::memory_order_relaxed);
    if (levels > 1) {
      state_->count.store(levels - 1, std::memory_order_relaxed);
      return;
    }
  }
  state_->count.store(0, std::memory_order_relaxed);
  state_->previous_owner_died.store(false, std::memory_order_relaxed);
  state_->owner_pid.store(0, std::memory_order_relaxed);
  state_->owner_tid.store(0, std::memory_order_relaxed);
  state_->mutex.unlock();
}

bool LockBase::locked() const noexcept {
  return state_->owner_tid.load(std::memory_order_relaxed) != 0;
}

bool LockBase::previous_owner_died() const noexcept {
  return is_mine() && state_->previous_owner_died.load(std::memory_order_relaxed);
}

std::uint32_t LockBase::count() const noexcept {
  return state_->count.load(std::memory_order_relaxed);
}

std::uint32_t LockBase::release_all() {
  if (!is_mine())
    throw ValueError("cannot wait on a condition whose lock the caller does not hold");
  const std::uint32_t levels = state_->count.load(std::memory_order_relaxed);
  state_->count.store(1, std::memory_order_relaxed);
  release();
  return levels;
}

void LockBase::restore(std::uint32_t levels) {
  acquire(Deadline::never());
  state_->count.store(levels, std::memory_order_relaxed);
}

std::string LockBase::owner_repr() const {
  const pid_t tid = state_->owner_tid.load(std::memory_order_relaxed);
  const pid_t pid = state_->owner_pid.load(std::memory_order_relaxed);
  if (tid == 0) return "None";
  if (detail::is_main_thread_id(tid, pid)) return std::to_string(pid);
  return std::to_string(pid) + "|" + std::to_string(tid);
}

Lock::Lock() : LockBase(SharedSegment(), nullptr) {
  auto [segment, state] = detail::create_state<LockState>(SyncKind::kLock);
  segment_ = std::move(segment);
  state_ = state;
}

Lock Lock::attach(std::string_view name) {
  auto [segment, state] = detail::attach_state<LockState>(name, SyncKind::kLock, "Lock");
  return Lock(std::move(segment), state);
}

std::string Lock::repr() const { return "<Lock(owner=" + owner_repr() + ")>"; }

RLock::RLock() : LockBase(SharedSegment(), nullptr) {
  auto [segment, state] = detail::create_state<LockState>(SyncKind::kRLock);
  segment_ = std::move(segment);
  state_ = state;
}

RLock RLock::attach(std::string_view name) {
  auto [segment, state] = detail::attach_state<LockState>(name, SyncKind::kRLock, "RLock");
  return RLock(std::move(segment), state);
}

std::string RLock::repr() const {
  return "<RLock(" + owner_repr() + ", " + std::to_string(locked() ? count() : 0) + ")>";
}

}  // namespace mproc
