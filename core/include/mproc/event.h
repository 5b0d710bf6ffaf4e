// mproc/event.h
//
// `Event`: a flag shared between processes that others can wait for, like Python's
// `multiprocessing.Event`.
//
//   mproc::Event ready;
//   // child:  ready.set();
//   if (ready.wait(2s)) { ... }      // parent: true once set, false after 2 s
//
// A handle: copies share one flag, kept in a small shared-memory segment owned by the creating
// process; `attach(name())` reaches it from another process.
//
// Robustness: one atomic word and a futex, no mutex: a process killed while waiting or setting
// cannot block the others.
//
// Thread safety: every member function may be called from any thread of any process.
// Fork safety: an event created before a fork is shared by parent and child.
// Memory ordering: set() happens-before every wait() that returns true because of it.
#pragma once

#include <chrono>
#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>

#include "mproc/deadline.h"
#include "mproc/detail/blank_handle.h"
#include "mproc/shm.h"

namespace mproc {

namespace detail {
struct EventState;
}  // namespace detail

class Event {
 public:
  // A new, unset event.
  Event();
  // A handle to no event, to load into (see detail/blank_handle.h).
  explicit Event(detail::BlankHandle) noexcept : Event(SharedSegment{}, nullptr) {}
  [[nodiscard]] static Event attach(std::string_view name);

  // Sets the flag and wakes every waiter.
  void set();
  // Unsets the flag.
  void clear();
  [[nodiscard]] bool is_set() const noexcept;

  // Blocks until the flag is set; wakes on set(). Returns true.
  bool wait();
  // Waits at most until `deadline`. Returns true when the event was set (also if it was set and
  // cleared again while this call slept), false when the deadline passed first.
  bool wait(const Deadline& deadline);
  template <class Rep, class Period>
  bool wait(std::chrono::duration<Rep, Period> timeout) {
    return wait(Deadline::after(timeout));
  }

  [[nodiscard]] const std::string& name() const noexcept { return segment_.name(); }
  // `<Event at 0x7f0123456000 unset>` / `... set>` (the address of the shared state here).
  [[nodiscard]] std::string repr() const;

  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    detail::serialize_by_name(ar, *this);
  }

 private:
  Event(SharedSegment segment, detail::EventState* state)
      : segment_(std::move(segment)), state_(state) {}

  SharedSegment segment_;
  detail::EventState* state_;
};

inline std::ostream& operator<<(std::ostream& os, const Event& e) { return os << e.repr(); }

}  // namespace mproc
