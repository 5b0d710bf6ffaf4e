// mproc/log.h
//
// mproc's spdlog logger, like Python's `multiprocessing.get_logger()` / `log_to_stderr()`.
// The logger is named "mproc"; each line carries the time, the pid and the process name
// (`MainProcess`, `Process-1`, ...). Quiet by default: only warnings and errors are printed.
//
//   mproc::log_to_stderr(spdlog::level::debug);   // process start, exit and signals
//
// Thread safety: all functions may be called from any thread. Fork safety: a forked child keeps
// the logger, even when another thread was writing a line at the fork; its lines carry the
// child's pid and name.
#pragma once

#include <memory>
#include <string>

#include <spdlog/spdlog.h>

namespace mproc {

// The "mproc" logger (created on first use, level warn, to stderr).
[[nodiscard]] std::shared_ptr<spdlog::logger> get_logger();

// Sets the logger's level (Python: `log_to_stderr(level)`) and returns the logger.
std::shared_ptr<spdlog::logger> log_to_stderr(
    spdlog::level::level_enum level = spdlog::level::info);

namespace detail {
// The name shown in log lines; set by the process layer when a child starts.
void set_log_process_name(std::string name);
}  // namespace detail

}  // namespace mproc
