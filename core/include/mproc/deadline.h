// mproc/deadline.h
//
// `Deadline`: the point on the steady clock at which a blocking call gives up. Every blocking
// call of mproc takes one, or a duration (`q.get(2s)`), or nothing (wait for ever). Absolute
// deadlines make a wait that is interrupted and resumed (EINTR, spurious wake-ups) still end on
// time.
#pragma once

#include <chrono>
#include <optional>

namespace mproc {

using Clock = std::chrono::steady_clock;

class Deadline {
 public:
  // Waits for ever.
  [[nodiscard]] static constexpr Deadline never() noexcept { return Deadline(); }
  // Gives up at once (a non-blocking call).
  [[nodiscard]] static Deadline now() noexcept { return Deadline(Clock::now()); }
  // `timeout` from now; a negative timeout is the same as zero.
  template <class Rep, class Period>
  [[nodiscard]] static Deadline after(std::chrono::duration<Rep, Period> timeout) noexcept {
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(timeout);
    return Deadline(Clock::now() + (ns.count() > 0 ? ns : std::chrono::nanoseconds(0)));
  }
  // Python's `timeout=None` or seconds: nullopt waits for ever.
  [[nodiscard]] static Deadline after(std::optional<double> seconds) noexcept {
    return seconds ? after(std::chrono::duration<double>(*seconds)) : never();
  }
  [[nodiscard]] static constexpr Deadline at(Clock::time_point when) noexcept {
    return Deadline(when);
  }

  [[nodiscard]] constexpr bool is_never() const noexcept { return !when_; }
  [[nodiscard]] Clock::time_point when() const noexcept {
    return when_ ? *when_ : Clock::time_point::max();
  }
  [[nodiscard]] bool expired() const noexcept { return when_ && Clock::now() >= *when_; }
  // Time left (zero once expired); `nanoseconds::max()` for never.
  [[nodiscard]] std::chrono::nanoseconds remaining() const noexcept {
    if (!when_) return std::chrono::nanoseconds::max();
    auto left = *when_ - Clock::now();
    return left.count() > 0 ? std::chrono::duration_cast<std::chrono::nanoseconds>(left)
                            : std::chrono::nanoseconds(0);
  }

 private:
  constexpr Deadline() noexcept = default;
  constexpr explicit Deadline(Clock::time_point when) noexcept : when_(when) {}
  std::optional<Clock::time_point> when_;
};

}  // namespace mproc
