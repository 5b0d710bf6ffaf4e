// Helpers for mproc's tests: forking a child that runs a lambda, running a program and capturing
// what it prints, and the checks every test gets from test_main.cc (no /dev/shm segment and no
// zombie left behind).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace mproc::test {

using namespace std::chrono_literals;

// How a child ended: `code` is the exit status, or minus the signal number.
struct ChildExit {
  int code = 0;
  bool timed_out = false;  // the child was killed because it ran past the timeout
};

// Forks; the child runs `body` and leaves with _exit(body's return value) (exit 99 when it
// throws). The parent waits at most `timeout`, then SIGKILLs it and reports `timed_out`.
ChildExit fork_and_wait(const std::function<int()>& body, std::chrono::milliseconds timeout = 20s);

// As fork_and_wait, with the child's stderr going to a pipe: how it ended and what it wrote
// there.
struct ChildOutput {
  ChildExit exit;
  std::string err;
};
ChildOutput fork_capturing_stderr(const std::function<int()>& body,
                                  std::chrono::milliseconds timeout = 20s);

// A child started by fork_child, waited for by wait_child (with the same timeout rule).
pid_t fork_child(const std::function<int()>& body);
ChildExit wait_child(pid_t pid, std::chrono::milliseconds timeout = 20s);

struct ProgramOutput {
  int exit_code = 0;  // or minus the signal number
  bool timed_out = false;
  std::string out;
  std::string err;
};

// Runs `path` with `args`, capturing stdout and stderr; kills it after `timeout`.
ProgramOutput run_program(const std::string& path, const std::vector<std::string>& args = {},
                          std::chrono::milliseconds timeout = 30s);

// The lines of `text`, without the newlines.
std::vector<std::string> lines_of(const std::string& text);

// mproc segments in /dev/shm whose owner is this process or no longer exists.
std::vector<std::string> leaked_segments();

// The start methods, by name, for tests that run a program under each (MPROC_START_METHOD).
inline const std::vector<std::string> kStartMethods{"fork", "forkserver", "spawn"};

// Runs `path` as run_program does, with `extra_environment` ("NAME=value") added.
ProgramOutput run_program_in(const std::string& path, const std::vector<std::string>& args,
                             std::chrono::milliseconds timeout,
                             const std::vector<std::string>& extra_environment);

// Runs `path` as run_program does, with MPROC_START_METHOD=`method` in its environment.
ProgramOutput run_program_with_method(const std::string& path, const std::string& method,
                                      std::chrono::milliseconds timeout = 30s);

// Seconds elapsed while running `fn`.
double seconds_to_run(const std::function<void()>& fn);

}  // namespace mproc::test
