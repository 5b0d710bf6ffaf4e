// The fork server: a single-threaded process, started by exec of this same program, that forks
// the children of the forkserver start method. Python's forkserver, with two changes: the child's
// wait status goes back on the very connection that asked for it (which is the requester's
// sentinel), and a daemonic child is sent SIGTERM when its requester dies, as a forked daemon is
// by PR_SET_PDEATHSIG.
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "mproc/connection.h"
#include "mproc/errors.h"
#include "mproc/listener.h"
#include "mproc/log.h"
#include "mproc/process.h"
#include "mproc/serialize.h"
#include "mproc/start_method.h"

#include "child_start.h"
#include "os_error.h"
#include "process_state.h"
#include "unique_fd.h"

namespace mproc::detail {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kStartTimeout = std::chrono::seconds(30);

// What the fork server is told when it starts.
struct ServerStart {
  std::string address;
  std::string authkey;
  pid_t parent = 0;

  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar& address& authkey& parent;
  }
};

// This process's fork server: the one it started (and must reap), or the one it inherited.
struct ServerHandle {
  std::mutex mutex;
  ForkServerAddress where;
  pid_t pid = 0;         // when started by this process
  pid_t started_by = 0;  // that process (a forked child does not own its parent's server)
};

ServerHandle& server_handle() {
  static auto* handle = new ServerHandle;  // never destroyed: used at exit and after fork
  return *handle;
}

std::string fresh_address() {
  auto salt = static_cast<std::uint64_t>(Clock::now().time_since_epoch().count());
  return std::string(1, '\0') + "mproc-forkserver-" + std::to_string(::getpid()) + "-" +
         std::to_string(salt);
}

// Starts a fork server; the caller holds the handle's mutex.
void start_server(ServerHandle& h) {
  if (h.pid != 0 && h.started_by == ::getpid()) {
    int status = 0;  // the previous one, which died: reap it
    (void)::waitpid(h.pid, &status, WNOHANG);
  }
  if (!init_was_called()) {
    throw ProcessError(
        "the forkserver start method needs mproc::init(argc, argv) as the first line of main: "
        "the fork server runs this program again, and init is where it becomes the server");
  }
  ServerStart start{fresh_address(), current_process().authkey(), ::getpid()};
  SpawnedProcess spawned = spawn_process("forkserver", mproc::encode(start), {});
  Connection channel(spawned.channel.release());
  std::string ready;
  try {
    ready = channel.recv_bytes(Deadline::after(kStartTimeout));
  } catch (const std::exception& e) {
    ::kill(spawned.pid, SIGKILL);
    int status = 0;
    (void)retry_on_eintr([&] { return ::waitpid(spawned.pid, &status, 0); });
    throw ProcessError(std::string("the fork server did not start: ") + e.what() +
                       " (does main call mproc::init(argc, argv) first?)");
  }
  h.where = {start.address, start.authkey};
  h.pid = spawned.pid;
  h.started_by = ::getpid();
  get_logger()->debug("started the fork server (pid {})", h.pid);
}

// ---- the server

struct Child {
  pid_t pid = 0;
  UniqueFd pidfd;
  Connection requester;      // where the wait status goes
  UniqueFd requester_pidfd;  // daemonic children only: SIGTERM when it becomes readable
};

// Hands the descriptors over to their new owner (run_child's HandleImport).
std::vector<int> release_all(std::vector<UniqueFd>& handles) {
  std::vector<int> fds;
  fds.reserve(handles.size());
  for (UniqueFd& fd : handles) fds.push_back(fd.release());
  return fds;
}

[[noreturn]] void fork_child(const ChildStart& start, std::vector<UniqueFd> handles,
                             Listener& listener, std::map<int, Child>& children, int parent_fd) {
  // The child keeps only its own descriptors: the server's, and those it holds for each of its
  // other children, are closed (not inherited by exec either, but this child never execs).
  listener.close();
  ::close(parent_fd);
  for (auto& entry : children) {
    Child& sibling = entry.second;
    sibling.pidfd.reset();
    sibling.requester_pidfd.reset();
    sibling.requester.close();
  }
  ::signal(SIGCHLD, SIG_DFL);
  run_child(start, release_all(handles));
}

void serve_one(Listener& listener, std::map<int, Child>& children, int parent_fd) {
  Connection client;
  try {
    client = listener.accept(Deadline::now());
  } catch (const AuthenticationError& e) {
    get_logger()->warn("fork server: a client failed to authenticate: {}", e.what());
    return;
  } catch (const TimeoutError&) {
    return;
  }
  ChildStart start;
  std::vector<UniqueFd> handles;  // this server's copies: closed when this request is done
  try {
    start = mproc::decode<ChildStart>(client.recv_bytes(Deadline::after(kStartTimeout)));
    for (std::uint32_t i = 0; i < start.handle_count; ++i)
      handles.emplace_back(recv_handle(client));
  } catch (const std::exception& e) {
    get_logger()->warn("fork server: a bad request: {}", e.what());
    return;
  }
  // Opened before the fork: the requester may die, and be reaped, as soon as it has the child's
  // pid, and its daemonic child must still end with it (a pid looked up later may be another's).
  UniqueFd requester_pidfd;
  if (start.identity.daemon) {
    requester_pidfd.reset(pidfd_open(start.identity.parent_pid));
    if (!requester_pidfd) return;  // the requester is gone already: its daemon would be an orphan
  }
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    requester_pidfd.reset();
    fork_child(start, std::move(handles), listener, children, parent_fd);
  }
  const std::int64_t reply = pid < 0 ? -errno : pid;
  handles.clear();
  try {
    client.send_bytes(mproc::encode(reply));
  } catch (const std::exception&) {  // the requester is gone: its child still runs to its end
  }
  if (pid < 0) return;
  Child child{.pid = pid,
              .pidfd = UniqueFd(pidfd_open(pid)),
              .requester = std::move(client),
              .requester_pidfd = std::move(requester_pidfd)};
  const int key = child.pidfd.get();
  children.emplace(key, std::move(child));
}

void reap_child(std::map<int, Child>& children, int pidfd) {
  auto it = children.find(pidfd);
  int status = 0;
  if (retry_on_eintr([&] { return ::waitpid(it->second.pid, &status, WNOHANG); }) == 0) return;
  if (!it->second.requester.closed()) {
    (void)::send(it->second.requester.fileno(), &status, sizeof status, MSG_NOSIGNAL);
  }
  children.erase(it);
}

}  // namespace

ForkServerAddress forkserver_address() {
  ServerHandle& h = server_handle();
  std::scoped_lock lock(h.mutex);
  return h.where;
}

std::string forkserver_address_text() { return forkserver_address().address; }

pid_t forkserver_pid() {
  ServerHandle& h = server_handle();
  std::scoped_lock lock(h.mutex);
  return h.started_by == ::getpid() ? h.pid : 0;
}

void set_forkserver_authkey(std::string key) {
  ServerHandle& h = server_handle();
  std::scoped_lock lock(h.mutex);
  h.where.authkey = std::move(key);
}

void set_inherited_forkserver(ForkServerAddress where) {
  ServerHandle& h = server_handle();
  std::scoped_lock lock(h.mutex);
  h.where = std::move(where);
  h.pid = 0;
  h.started_by = 0;
}

void ensure_forkserver() {
  ServerHandle& h = server_handle();
  std::scoped_lock lock(h.mutex);
  if (h.where.address.empty()) start_server(h);
}

LaunchedChild launch_by_forkserver(std::string_view record, const std::vector<int>& handles) {
  ServerHandle& h = server_handle();
  for (int attempt = 0;; ++attempt) {
    ForkServerAddress where;
    {
      std::scoped_lock lock(h.mutex);
      if (h.where.address.empty()) start_server(h);
      where = h.where;
    }
    Connection server;
    try {
      server = Client(Address(where.address), where.authkey);
    } catch (const std::system_error& e) {
      // Nobody listens: the server died (killed, or its parent ended). Start another, once.
      std::scoped_lock lock(h.mutex);
      if (attempt > 0) throw;
      if (h.where.address == where.address) h.where = {};
      get_logger()->info("the fork server is gone ({}): starting a new one", e.what());
      continue;
    }
    server.send_bytes(record);
    for (int fd : handles) send_handle(server, fd);
    auto reply = mproc::decode<std::int64_t>(server.recv_bytes(Deadline::after(kStartTimeout)));
    if (reply < 0) throw_errno(static_cast<int>(-reply), "fork (in the fork server)");
    return {static_cast<pid_t>(reply), UniqueFd(server.release())};
  }
}

void serve_as_forkserver(int channel_fd) {
  ServerStart start;
  Connection channel(channel_fd);
  try {
    start = mproc::decode<ServerStart>(channel.recv_bytes());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mproc fork server: bad start-up record: %s\n", e.what());
    ::_exit(1);
  }
  current_process().set_authkey(start.authkey);
  current_process().set_name("ForkServer");
  // It must not take the terminal's Ctrl-C for its parent's.
  ::signal(SIGINT, SIG_IGN);
  UniqueFd parent(pidfd_open(start.parent));
  if (!parent || ::getppid() != start.parent) ::_exit(0);
  Listener listener(Address(start.address), start.authkey, SOMAXCONN);
  channel.send_bytes("ready");
  channel.close();

  std::map<int, Child> children;  // by pidfd
  for (;;) {
    std::vector<pollfd> fds{{listener.fileno(), POLLIN, 0}, {parent.get(), POLLIN, 0}};
    for (auto& [fd, child] : children) {
      fds.push_back({fd, POLLIN, 0});
      if (child.requester_pidfd) fds.push_back({child.requester_pidfd.get(), POLLIN, 0});
    }
    if (::poll(fds.data(), fds.size(), -1) < 0) continue;  // EINTR
    if (fds[1].revents != 0) {
      // The program is over: its daemonic children end with it, the others run on.
      for (auto& [fd, child] : children)
        if (child.requester_pidfd) (void)pidfd_send_signal(child.pidfd.get(), SIGTERM);
      ::_exit(0);
    }
    for (std::size_t i = 2; i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      if (auto it = children.find(fds[i].fd); it != children.end()) {
        reap_child(children, fds[i].fd);
      } else {
        for (auto& [fd, child] : children) {
          if (child.requester_pidfd.get() == fds[i].fd) {
            (void)pidfd_send_signal(child.pidfd.get(), SIGTERM);
            child.requester_pidfd.reset();
          }
        }
      }
    }
    if (fds[0].revents != 0) serve_one(listener, children, parent.get());
  }
}

}  // namespace mproc::detail
