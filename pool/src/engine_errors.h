// What every Pool engine (this machine's, and mproc::dist's across ranks) checks and reports in
// the same words, so that a program sees the same errors whichever runs its tasks.
#pragma once

#include <exception>

#include "mproc/pool.h"

namespace mproc::detail {

// ValueError for a task timeout that is not positive or a negative kill grace.
void check_limits(const JobLimits& limits);

// What the tasks a terminate() ended fail with.
[[nodiscard]] std::exception_ptr terminated_error();

// What terminate_workers(signal) fails tasks with: those running, and those not started yet.
struct ForcedShutdownErrors {
  std::exception_ptr running;
  std::exception_ptr not_started;
};
[[nodiscard]] ForcedShutdownErrors forced_shutdown_errors(int signal);

}  // namespace mproc::detail
