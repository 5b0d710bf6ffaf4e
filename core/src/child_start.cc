#include "child_start.h"

#include <dirent.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>

#include "mproc/connection.h"
#include "mproc/detail/handle_passing.h"
#include "mproc/errors.h"
#include "mproc/log.h"
#include "mproc/serialize.h"
#include "mproc/start_method.h"

#include "os_error.h"

extern char** environ;  // NOLINT(readability-redundant-declaration): not declared by <unistd.h>

namespace mproc::detail {
namespace {

std::size_t thread_count() {
  // Linux gives /proc/self/task a link count of 2 + the number of threads: one stat, rather than
  // reading the directory, at every start of a Pool or Process under fork. A count that does not
  // look like that (another kernel) falls back on the listing.
  struct stat task {};
  if (::stat("/proc/self/task", &task) == 0 && task.st_nlink > 2)
    return static_cast<std::size_t>(task.st_nlink) - 2;
  DIR* dir = ::opendir("/proc/self/task");
  if (dir == nullptr) return 1;
  std::size_t count = 0;
  while (const dirent* entry = ::readdir(dir))
    if (entry->d_name[0] != '.') ++count;
  ::closedir(dir);
  return count;
}

// Builds the start-up record of a child from its identity and its call, collecting the
// descriptors among the call's arguments.
struct EncodedStart {
  std::string record;
  std::vector<int> handles;
};

EncodedStart encode_start(const ChildIdentity& me, const std::function<SentCall()>& encode) {
  HandleExport exports;
  SentCall call = encode();
  ChildStart start{.identity = me,
                   .task = std::move(call.task),
                   .arguments = std::move(call.arguments),
                   .handle_count = static_cast<std::uint32_t>(exports.handles().size()),
                   .forkserver_address = {},
                   .forkserver_authkey = {}};
  ForkServerAddress server = forkserver_address();
  start.forkserver_address = std::move(server.address);
  start.forkserver_authkey = std::move(server.authkey);
  return {mproc::encode(start), exports.handles()};
}

void send_start(Connection& channel, std::string_view record, const std::vector<int>& handles) {
  channel.send_bytes(record);
  for (int fd : handles) send_handle(channel, fd);
}

LaunchedChild launch_by_spawn(const EncodedStart& start) {
  if (!init_was_called()) {
    throw ProcessError(
        "the spawn start method needs mproc::init(argc, argv) as the first line of main: the "
        "child runs this program again, and init is where it becomes the child");
  }
  SpawnedProcess spawned = spawn_process("process", start.record, start.handles);
  return {spawned.pid, UniqueFd()};
}

}  // namespace

LaunchedChild launch_child(StartMethod method, const ChildIdentity& me,
                           const std::function<SentCall()>& encode) {
  EncodedStart start = encode_start(me, encode);
  if (method == StartMethod::spawn) return launch_by_spawn(start);
  return launch_by_forkserver(start.record, start.handles);
}

bool read_forkserver_status(int fd, int& status) {
  int value = 0;
  ssize_t n = retry_on_eintr([&] { return ::recv(fd, &value, sizeof value, MSG_DONTWAIT); });
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;
  if (n > 0 && n < static_cast<ssize_t>(sizeof value)) {  // the rest is on its way
    char* rest = reinterpret_cast<char*>(&value) + n;
    const auto missing = sizeof value - static_cast<std::size_t>(n);
    if (retry_on_eintr([&] { return ::recv(fd, rest, missing, MSG_WAITALL); }) ==
        static_cast<ssize_t>(missing))
      n = sizeof value;
  }
  if (n == static_cast<ssize_t>(sizeof value)) {
    status = value;
    return true;
  }
  report_error(
      "the fork server went away without the exit status of a child (reported as exit "
      "code 255)");
  status = 255 << 8;
  return true;
}

void warn_once_if_threaded(std::string_view what) {
  static std::atomic<bool> warned{false};
  if (warned.load(std::memory_order_relaxed)) return;
  const std::size_t threads = thread_count();
  if (threads <= 1 || warned.exchange(true)) return;
  get_logger()->warn(
      "{}: this process runs {} threads, and forking it may deadlock the child (a lock another "
      "thread held is copied locked): prefer the forkserver or spawn start method",
      what, threads);
}

SpawnedProcess spawn_process(std::string_view role, std::string_view first_message,
                             const std::vector<int>& handles) {
  // A process started by spawn or as a fork server whose main did not begin with init would run
  // the program again, and start the same again: refuse before that becomes a chain of copies.
  if (std::getenv(kRoleVariable) != nullptr) {
    throw ProcessError(
        "this process was started by mproc as a child, but its main did not call "
        "mproc::init(argc, argv) first: call it as the first line of main");
  }
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    throw_errno("create the start-up channel of a new process");
  UniqueFd ours(sv[0]);
  UniqueFd theirs(sv[1]);

  // Everything the child gets is prepared before it exists: posix_spawn's child may only exec.
  std::vector<std::string> variables;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view v(*e);
    if (v.starts_with(kRoleVariable) || v.starts_with(kChannelVariable)) continue;
    variables.emplace_back(v);
  }
  variables.push_back(std::string(kRoleVariable) + "=" + std::string(role));
  variables.push_back(std::string(kChannelVariable) + "=" + std::to_string(kChannelFd));
  std::vector<char*> envp;
  for (auto& v : variables) envp.push_back(v.data());
  envp.push_back(nullptr);
  std::string program = get_executable();
  std::string arg0 = program_name();
  std::vector<char*> argv{arg0.data(), nullptr};

  posix_spawn_file_actions_t actions;
  ::posix_spawn_file_actions_init(&actions);
  ::posix_spawn_file_actions_adddup2(&actions, theirs.get(), kChannelFd);
  // Python's spawn: the child inherits no descriptor but stdio and its channel.
  ::posix_spawn_file_actions_addclosefrom_np(&actions, kChannelFd + 1);
  pid_t pid = 0;
  int error = ::posix_spawn(&pid, program.c_str(), &actions, nullptr, argv.data(), envp.data());
  ::posix_spawn_file_actions_destroy(&actions);
  if (error != 0) throw_errno(error, "spawn a new process");
  theirs.reset();

  Connection channel(ours.release());
  try {
    send_start(channel, first_message, handles);
  } catch (...) {
    // A child that cannot be told what to do is of no use: it ends at EOF on its channel.
    channel.close();
    throw;
  }
  return {pid, UniqueFd(channel.release())};
}

void run_started_child(int channel_fd) {
  ChildStart start;
  std::vector<int> handles;
  try {
    Connection channel(channel_fd);
    start = mproc::decode<ChildStart>(channel.recv_bytes());
    for (std::uint32_t i = 0; i < start.handle_count; ++i) handles.push_back(recv_handle(channel));
  } catch (const std::exception& e) {
    // Before the child knows who it is there is no one to report to but stderr.
    std::fprintf(stderr, "mproc: a new process could not read its start-up record: %s\n", e.what());
    ::_exit(1);
  }
  run_child(start, std::move(handles));
}

void run_child(const ChildStart& start, std::vector<int> handles) {
  set_inherited_forkserver({start.forkserver_address, start.forkserver_authkey});
  run_as_child(start.identity, [&] {
    HandleImport imports(std::move(handles));
    task_directory().run(start.task, start.arguments);
  });
}

}  // namespace mproc::detail
