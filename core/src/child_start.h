// Starting a child other than by a plain fork: by exec of this same program (spawn) or by the
// fork server. Both children receive, on a Unix socket, a start-up record and the descriptors it
// refers to; `mproc::init` turns the new process into the role it names.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "mproc/detail/call_codec.h"
#include "mproc/process.h"

#include "process_state.h"
#include "unique_fd.h"

namespace mproc::detail {

// The environment variables that tell `init` which role a new process has and where its
// start-up channel is.
inline constexpr const char* kRoleVariable = "MPROC_CHILD_ROLE";
inline constexpr const char* kChannelVariable = "MPROC_CHILD_CHANNEL";
inline constexpr int kChannelFd = 3;

// What a child started by spawn or the fork server receives first.
struct ChildStart {
  ChildIdentity identity;
  std::string task;
  std::string arguments;
  std::uint32_t handle_count = 0;
  std::string forkserver_address;  // so that the child's own forkserver children share it
  std::string forkserver_authkey;

  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar& identity& task& arguments& handle_count& forkserver_address& forkserver_authkey;
  }
};

struct LaunchedChild {
  pid_t pid = 0;
  UniqueFd status_fd;  // children of the fork server only (see ProcessState::status_fd)
};

// Starts the child `me` by `method` (spawn or forkserver) to run the call `encode()` gives.
LaunchedChild launch_child(StartMethod method, const ChildIdentity& me,
                           const std::function<SentCall()>& encode);

// Asks the fork server for a child (forkserver.cc): sends the start-up record and its handles.
LaunchedChild launch_by_forkserver(std::string_view record, const std::vector<int>& handles);

// Reads a fork server child's wait status if it has arrived (never blocks). True when known; a
// server gone without sending it gives 255, as a status lost elsewhere does.
bool read_forkserver_status(int fd, int& status);

// Logs, the first time only, that `what` forks a process that runs several threads.
void warn_once_if_threaded(std::string_view what);

// ---- for init and the roles

// Starts this same program (fork + exec of /proc/self/exe) in `role`, with a socket to it on
// which `first_message` and then `handles` are sent. Returns the pid and the parent's end.
struct SpawnedProcess {
  pid_t pid = 0;
  UniqueFd channel;
};
SpawnedProcess spawn_process(std::string_view role, std::string_view first_message,
                             const std::vector<int>& handles);

// Reads the record and descriptors a child was started with, and runs it; never returns.
[[noreturn]] void run_started_child(int channel_fd);
// Runs the child described by `start` with `handles` (the fork server's children call this).
[[noreturn]] void run_child(const ChildStart& start, std::vector<int> handles);
// The fork server's main loop; never returns.
[[noreturn]] void serve_as_forkserver(int channel_fd);

// Where this process's children find the fork server; empty until one was started or inherited.
struct ForkServerAddress {
  std::string address;
  std::string authkey;
};
ForkServerAddress forkserver_address();
void set_inherited_forkserver(ForkServerAddress where);
// Starts the fork server now if there is none (mproc::init does so when it is the default).
void ensure_forkserver();

// Whether mproc::init ran in this program (spawn needs it: the child runs main again).
bool init_was_called() noexcept;
// argv[0] as main got it (what a spawned child is given), "mproc" before init.
std::string program_name();

}  // namespace mproc::detail
