#include "engine_errors.h"

#include <signal.h>

#include <string>

#include "mproc/errors.h"

namespace mproc::detail {

void check_limits(const JobLimits& limits) {
  if (limits.timeout && limits.timeout->count() <= 0)
    throw ValueError("a task timeout must be positive");
  if (limits.kill_grace.count() < 0) throw ValueError("kill_grace must not be negative");
}

std::exception_ptr terminated_error() {
  return std::make_exception_ptr(ProcessError("the pool was terminated before this task finished"));
}

ForcedShutdownErrors forced_shutdown_errors(int signal) {
  const std::string what = std::string("the pool's workers were forcefully shut down (") +
                           (signal == SIGKILL ? "kill_workers" : "terminate_workers") + ") ";
  return {std::make_exception_ptr(ProcessError(what + "while this task ran")),
          std::make_exception_ptr(CancelledError(what + "before this task started"))};
}

}  // namespace mproc::detail
