// The shared state behind Process, ChildProcess and ParentProcess, and the process-wide registry
// of this process's children (Python's `_children`, `_current_process`, `_parent_process`).
#pragma once

#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "mproc/deadline.h"
#include "mproc/process.h"

#include "unique_fd.h"

namespace mproc::detail {

struct ProcessState {
  mutable std::mutex mutex;  // guards pid's reaping, exitcode and name against other threads

  // Fixed at construction.
  std::vector<int> identity;  // {1} for Process-1, {1, 2} for Process-1:2
  pid_t creator_pid = 0;      // the process that constructed (and may start) it
  std::string creator_name;   // its name at start(): the child's parent_process().name()

  std::optional<std::string> name;  // resolved to the default name at start()
  bool daemon = false;
  std::string authkey;
  std::optional<StartMethod> start_method;  // unset: the default context's, at start()

  bool started = false;
  bool closed = false;
  bool is_self = false;  // in the child: the Process object of the running process itself
  pid_t pid = 0;
  UniqueFd pidfd;  // readable once the child has exited
  // A child of the fork server is not ours to wait for: the server reaps it and writes its
  // wait status (an int) here, then closes it. Empty for our own children.
  UniqueFd status_fd;
  std::optional<int> exitcode;  // set when reaped
};

struct ParentState {
  pid_t pid = 0;
  std::string name;
  UniqueFd fd;  // a pidfd of the parent, or (parent already gone) a pipe at EOF
};

// glibc 2.36's <sys/pidfd.h> lacks extern "C": call the system calls directly.
inline int pidfd_open(pid_t pid) noexcept {
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
}
inline int pidfd_send_signal(int pidfd, int sig) noexcept {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0));
}

// Who a new child is: what a forked child copies from its Process object, and what a child
// started by exec or by the fork server receives in its start-up record.
struct ChildIdentity {
  std::string name;
  std::vector<int> identity;
  bool daemon = false;
  std::string authkey;
  pid_t parent_pid = 0;
  std::string parent_name;
  StartMethod start_method = StartMethod::fork;

  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    auto method = static_cast<std::uint8_t>(start_method);
    ar& name& identity& daemon& authkey& parent_pid& parent_name& method;
    start_method = static_cast<StartMethod>(method);
  }
};

// Makes this freshly started process the child `me` (current_process(), parent_process(), log
// name, stdin from /dev/null, death signal for a daemon), runs `body`, and exits: 0, or 1 with
// the exception on stderr, after joining its own children.
[[noreturn]] void run_as_child(const ChildIdentity& me, const std::function<void()>& body);

// The default start method for this process's own children: the one its parent used for it.
void inherit_start_method(StartMethod method) noexcept;

// What becomes readable when the child has exited: its pidfd, or for a child of the fork server
// the descriptor its wait status arrives on.
inline int exit_fd(const ProcessState& s) noexcept {
  return s.status_fd ? s.status_fd.get() : s.pidfd.get();
}

// Reaps the child if it has exited (never blocks). True once reaped (exitcode set). Removes the
// child's /dev/shm segments and its registry entry.
bool reap(const std::shared_ptr<ProcessState>& state);
// Waits for the child's exit (poll(2) on the pidfd, EINTR retried) until `deadline`, then reaps
// it. True once reaped.
bool wait_exit(const std::shared_ptr<ProcessState>& state, const Deadline& deadline);
// Sends `sig` unless the child has been reaped already.
void send_signal(const std::shared_ptr<ProcessState>& state, int sig);
// Waits until `fd` is readable or `deadline`; true if readable.
bool wait_readable(int fd, const Deadline& deadline);

}  // namespace mproc::detail
