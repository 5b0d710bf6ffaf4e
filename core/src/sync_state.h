// What the synchronization primitives keep in shared memory, and the helpers they share: each
// object is one small SharedSegment holding one of these states, placement-constructed by the
// creator. Nothing here holds a pointer: every process maps the segment at its own address.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <new>
#include <string_view>
#include <type_traits>
#include <utility>

#include "mproc/errors.h"
#include "mproc/shm.h"

#include "futex.h"
#include "robust_mutex.h"

namespace mproc::detail {

// The first word of every state, so that attaching a Lock's name as a Semaphore fails loudly.
enum class SyncKind : std::uint32_t {
  kLock = 0x6d704c4b,       // "mpLK"
  kRLock = 0x6d70524c,      // "mpRL"
  kSemaphore = 0x6d705345,  // "mpSE"
  kEvent = 0x6d704556,      // "mpEV"
  kCondition = 0x6d70434f,  // "mpCO"
  kBarrier = 0x6d704241,    // "mpBA"
};

// Lock and RLock. The pthread mutex knows its owner too, but not portably: `owner_tid` is ours,
// written by the holder right after acquiring and cleared right before releasing.
struct LockState {
  SyncKind kind;
  RobustMutex mutex{false};  // never recursive: RLock counts in `count` itself
  std::atomic<pid_t> owner_tid{0};
  std::atomic<pid_t> owner_pid{0};
  std::atomic<std::uint32_t> count{0};           // recursion depth (1 for a held Lock)
  std::atomic<bool> previous_owner_died{false};  // this hold was taken from a dead holder

  explicit LockState(SyncKind k) : kind(k) {}
};

struct SemaphoreState {
  SyncKind kind = SyncKind::kSemaphore;
  FutexWord value{0};
  std::atomic<std::uint32_t> sleepers{0};  // a hint: release() skips the wake syscall at 0
  std::uint32_t max_value = 0;             // 0: unbounded
};

struct EventState {
  SyncKind kind = SyncKind::kEvent;
  // Bit 0: the flag. Bits 1..: a generation bumped by every set(), so that a waiter sleeping
  // through a set() immediately followed by clear() still wakes with true.
  FutexWord word{0};
  std::atomic<std::uint32_t> sleepers{0};
};

inline constexpr std::size_t kMaxLockName = 96;

// Condition: see condition.cc for the algorithm. `current` and `pending` change only under the
// condition's lock; they are atomics only so that repr() may read them without it.
struct ConditionState {
  SyncKind kind = SyncKind::kCondition;
  SyncKind lock_kind = SyncKind::kRLock;
  char lock_name[kMaxLockName] = {};
  FutexWord epoch{0};   // bumped by notify when it turns current waiters into eligible ones
  FutexWord tokens{0};  // wake-ups granted by notify and not yet taken
  std::atomic<std::uint32_t> current{0};  // waiters that arrived since the last notify
  std::atomic<std::uint32_t> pending{0};  // eligible waiters without a token
};

struct BarrierState {
  SyncKind kind = SyncKind::kBarrier;
  RobustMutex mutex{false};
  FutexWord seq{0};        // bumped (under the mutex) by every notify_all
  std::int32_t state = 0;  // 0 filling, 1 draining, -1 resetting, -2 broken (threading.Barrier)
  std::uint32_t count = 0;
  std::uint32_t parties = 0;
  std::int64_t default_timeout_ns = -1;  // -1: none
};

// Creates a segment holding a freshly constructed `State`.
template <class State, class... Args>
std::pair<SharedSegment, State*> create_state(Args&&... args) {
  static_assert(alignof(State) <= 64);
  SharedSegment segment = SharedSegment::create(sizeof(State));
  State* state = new (segment.data()) State(std::forward<Args>(args)...);
  return {std::move(segment), state};
}

// Maps the segment `name` and checks that it holds a state of `kind`.
template <class State>
std::pair<SharedSegment, State*> attach_state(std::string_view name, SyncKind kind,
                                              std::string_view what) {
  SharedSegment segment = SharedSegment::attach(name);
  auto* state = static_cast<State*>(segment.data());
  if (segment.size() < sizeof(State) || state->kind != kind) {
    throw ValueError("shared segment " + std::string(name) + " does not hold a " +
                     std::string(what));
  }
  return {std::move(segment), state};
}

// The kernel thread id of the caller (unique among live threads of the whole system), cached per
// thread and forgotten in a forked child.
pid_t this_thread_id() noexcept;
// getpid(), cached the same way.
pid_t this_process_id() noexcept;

// The caller's holder id is its thread id; the main thread's id is its pid.
inline bool is_main_thread_id(pid_t tid, pid_t pid) noexcept { return tid == pid; }

}  // namespace mproc::detail
