#include "resource_tracker.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "mproc/errors.h"
#include "mproc/log.h"
#include "mproc/shm.h"

#include "os_error.h"
#include "unique_fd.h"

namespace mproc::detail {
namespace {

constexpr const char* kShmDir = "/dev/shm";
constexpr const char* kOwnerDir = "/dev/shm/.mproc-owners";

std::string owner_lock_path(pid_t pid) {
  return std::string(kOwnerDir) + "/" + std::to_string(pid);
}

// Unlinks /dev/shm/mproc-<pid>-* . Async-signal-unsafe but fork-safe (no locks taken).
void unlink_segments_of(pid_t pid) noexcept {
  DIR* dir = ::opendir(kShmDir);
  if (dir == nullptr) return;
  while (dirent* entry = ::readdir(dir)) {
    if (segment_owner(entry->d_name) == pid) ::shm_unlink(entry->d_name);
  }
  ::closedir(dir);
}

bool process_exists(pid_t pid) noexcept { return ::kill(pid, 0) == 0 || errno != ESRCH; }

// The owner of a segment is dead when its lock file is unlocked, or (no lock file at all) when
// no such process exists. If dead, its segments and lock file are removed.
void sweep_owner(pid_t pid) noexcept {
  if (pid == ::getpid()) return;
  std::string path = owner_lock_path(pid);
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (fd) {
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
      // Held: by the owner (alive), or by another process sweeping it right now. Only in the
      // second case is there no such process any more; then its segments can go too.
      if (!process_exists(pid)) unlink_segments_of(pid);
      return;
    }
    unlink_segments_of(pid);
    ::unlink(path.c_str());
  } else if (!process_exists(pid)) {
    unlink_segments_of(pid);
  }
}

void sweep_dead_owners() noexcept {
  std::set<pid_t> owners;
  if (DIR* dir = ::opendir(kShmDir)) {
    while (dirent* entry = ::readdir(dir)) {
      if (pid_t pid = segment_owner(entry->d_name)) owners.insert(pid);
    }
    ::closedir(dir);
  }
  if (DIR* dir = ::opendir(kOwnerDir)) {
    while (dirent* entry = ::readdir(dir)) {
      pid_t pid = 0;
      std::string_view name = entry->d_name;
      if (std::from_chars(name.data(), name.data() + name.size(), pid).ec == std::errc{} && pid > 0)
        owners.insert(pid);
    }
    ::closedir(dir);
  }
  for (pid_t pid : owners) sweep_owner(pid);
}

// Per-process state. Fork copies it; a child notices by the pid and starts over where needed.
struct State {
  std::mutex mutex;
  pid_t lock_pid = 0;  // the pid whose owner lock we hold
  UniqueFd lock_fd;
  pid_t tracker_for = 0;  // the pid that started or inherited a tracker
  UniqueFd tracker_fd;    // our end of the tracker's socket (inherited by forked children)
  pid_t tracker_pid = 0;
};

State& state() {
  static State* s = new State;  // never destroyed: used until _exit in children
  return *s;
}

// A normal exit removes the lock file (children leave with _exit; their reaper removes theirs).
void remove_own_lock_file() {
  State& s = state();
  if (s.lock_pid == ::getpid()) ::unlink(owner_lock_path(s.lock_pid).c_str());
}

void take_owner_lock(State& s) {
  pid_t self = ::getpid();
  if (s.lock_pid == self) return;
  s.lock_fd.reset();  // the parent's (still held by the parent itself)
  if (::mkdir(kOwnerDir, 01777) == 0) ::chmod(kOwnerDir, 01777);  // umask aside: every user's
  static const bool registered = std::atexit(remove_own_lock_file) == 0;
  (void)registered;
  sweep_dead_owners();
  std::string path = owner_lock_path(self);
  for (;;) {
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!fd || retry_on_eintr([&] { return ::flock(fd.get(), LOCK_EX); }) != 0) {
      // No lock file (a directory another user made without write access for us): safe, since a
      // sweeper that finds none checks whether the pid exists. Only kill -9 of a whole tree then
      // leaves segments for longer (until the parent reaps or the tracker cleans).
      get_logger()->debug("no owner lock at {}: {}", path, std::strerror(errno));
      break;
    }
    // A sweeper may have removed the file between open and flock; lock a linked file only.
    struct stat by_fd {
    }, by_path{};
    if (::fstat(fd.get(), &by_fd) == 0 && ::stat(path.c_str(), &by_path) == 0 &&
        by_fd.st_ino == by_path.st_ino) {
      s.lock_fd = std::move(fd);
      break;
    }
  }
  s.lock_pid = self;
}

// ---- the tracker process ----

struct Tracked {
  UniqueFd pidfd;
  std::set<std::string> names;
};

// Says on stderr that a dead owner left segments, as Python's tracker does: a leak is a bug in
// the program (or a SIGKILL), worth a line.
void warn_leaked(std::size_t leaked, pid_t owner) noexcept {
  char text[160];
  int n = std::snprintf(text, sizeof text,
                        "mproc resource tracker: there appear to be %zu leaked shared memory "
                        "objects of process %d to clean up\n",
                        leaked, static_cast<int>(owner));
  if (n > 0) (void)!::write(2, text, static_cast<std::size_t>(n));
}

// Unlinks what a dead owner registered and never unregistered, and counts all of it as leaked,
// as Python's tracker does, whoever unlinks it: another mproc program that starts meanwhile
// sweeps the segments of dead owners too, and may come first.
void clean_up_leaked(const std::set<std::string>& names, pid_t owner) noexcept {
  if (names.empty()) return;
  for (const auto& name : names) (void)::shm_unlink(name.c_str());
  warn_leaked(names.size(), owner);
}

[[noreturn]] void tracker_main(int read_fd) {
  // Python's tracker ignores both: a Ctrl-C or a `kill` of the program's group must not take the
  // cleaner down before the processes it cleans up after.
  ::signal(SIGINT, SIG_IGN);
  ::signal(SIGTERM, SIG_IGN);
  ::signal(SIGPIPE, SIG_IGN);
  pid_t me = ::getpid();
  (void)::send(read_fd, &me, sizeof me, MSG_NOSIGNAL);  // who we are, for tracker_pid()
  std::map<pid_t, Tracked> owners;
  std::string pending;
  char buffer[4096];
  for (;;) {
    std::vector<pollfd> fds{{read_fd, POLLIN, 0}};
    std::vector<pid_t> pids;
    for (auto& [pid, tracked] : owners) {
      if (tracked.pidfd) {
        fds.push_back({tracked.pidfd.get(), POLLIN, 0});
        pids.push_back(pid);
      }
    }
    if (retry_on_eintr([&] { return ::poll(fds.data(), fds.size(), -1); }) < 0) break;
    // Every pending message first: an owner that registered a name and died at once must have
    // all its names in the set before its death is acted on.
    bool tree_gone = false;
    while (fds[0].revents != 0) {
      ssize_t n =
          retry_on_eintr([&] { return ::recv(read_fd, buffer, sizeof buffer, MSG_DONTWAIT); });
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      if (n <= 0) {  // every process of the tree has exited
        tree_gone = true;
        break;
      }
      pending.append(buffer, static_cast<std::size_t>(n));
      std::size_t end;
      while ((end = pending.find('\n')) != std::string::npos) {
        // "<R|U> <pid> <name>"
        std::string line = pending.substr(0, end);
        pending.erase(0, end + 1);
        if (line.size() < 5) continue;
        std::size_t space = line.find(' ', 2);
        if (space == std::string::npos) continue;
        pid_t pid = 0;
        std::from_chars(line.data() + 2, line.data() + space, pid);
        std::string name = line.substr(space + 1);
        if (line[0] == 'R') {
          Tracked& tracked = owners[pid];
          if (!tracked.pidfd)
            tracked.pidfd.reset(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
          if (!tracked.pidfd) {
            // Already gone and reaped: it may have unregistered the name in a line not read
            // yet, so only a segment still there is a leak.
            if (::shm_unlink(name.c_str()) == 0) warn_leaked(1, pid);
            owners.erase(pid);
          } else {
            tracked.names.insert(std::move(name));
          }
        } else if (auto it = owners.find(pid); it != owners.end()) {
          it->second.names.erase(name);
        }
      }
    }
    for (std::size_t i = 1; i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      auto it = owners.find(pids[i - 1]);
      if (it == owners.end()) continue;
      clean_up_leaked(it->second.names, it->first);
      owners.erase(it);
    }
    if (tree_gone) break;
  }
  for (auto& [pid, tracked] : owners) clean_up_leaked(tracked.names, pid);
  ::_exit(0);
}

void start_tracker(State& s) {
  pid_t self = ::getpid();
  if (s.tracker_for == self || (s.tracker_fd && s.tracker_for != 0)) {
    // Ours, or inherited from the parent: the tree shares one tracker.
    s.tracker_for = self;
    return;
  }
  // SOCK_SEQPACKET: each message arrives whole, the tracker sees EOF once every process of the
  // tree has closed its end, and a writer whose tracker died gets EPIPE instead of SIGPIPE.
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0)
    throw_errno("create the resource tracker's socket");
  UniqueFd read_end(fds[0]), write_end(fds[1]);
  // Double fork: the tracker is nobody's child here, so no one has to reap it and a user's
  // waitpid(-1) never sees it.
  pid_t middle = ::fork();
  if (middle < 0) throw_errno("fork the resource tracker");
  if (middle == 0) {
    if (::fork() == 0) {
      ::dup2(read_end.get(), 3);
      ::close_range(4, ~0U, 0);  // keep no one else's pipe ends open (EOF must still reach them)
      tracker_main(3);
    }
    ::_exit(0);
  }
  retry_on_eintr([&] { return ::waitpid(middle, nullptr, 0); });
  pid_t tracker = 0;
  if (retry_on_eintr([&] { return ::recv(write_end.get(), &tracker, sizeof tracker, 0); }) !=
      static_cast<ssize_t>(sizeof tracker))
    throw_errno(EIO, "start the resource tracker");
  s.tracker_fd = std::move(write_end);
  s.tracker_for = self;
  s.tracker_pid = tracker;
}

void tell_tracker(State& s, char verb, std::string_view name, pid_t owner = 0) noexcept {
  if (!s.tracker_fd) return;
  std::string line;
  line += verb;
  line += ' ';
  line += std::to_string(owner != 0 ? owner : ::getpid());
  line += ' ';
  line += name;
  line += '\n';
  auto sent = [&] {
    return retry_on_eintr([&] {
             return ::send(s.tracker_fd.get(), line.data(), line.size(), MSG_NOSIGNAL);
           }) == static_cast<ssize_t>(line.size());
  };
  if (sent() || verb != 'R') return;
  // The tracker died (someone SIGKILLed it): start a new one, as Python does, and say so. What
  // the dead one knew is gone; the owner-lock sweep still covers those names.
  report_error("mproc resource tracker: the tracker process died; starting a new one");
  try {
    s.tracker_fd.reset();
    s.tracker_for = 0;
    start_tracker(s);
    (void)sent();
  } catch (const std::exception& e) {
    report_error(std::string("cannot restart the resource tracker: ") + e.what());
  }
}

}  // namespace

pid_t segment_owner(std::string_view name) noexcept {
  constexpr std::string_view prefix = "mproc-";
  if (!name.starts_with(prefix)) return 0;
  name.remove_prefix(prefix.size());
  pid_t pid = 0;
  auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), pid);
  if (ec != std::errc{} || end == name.data() + name.size() || *end != '-') return 0;
  return pid;
}

namespace {
// A name the kernel takes (NAME_MAX) and one message of the tracker's socket can carry.
void check_name(std::string_view name) {
  if (name.size() > 255)
    throw ValueError("shared memory name too long: " + std::string(name.substr(0, 40)) + "...");
}
}  // namespace

pid_t resource_tracker_pid() noexcept {
  State& s = state();
  std::scoped_lock lock(s.mutex);
  return s.tracker_fd ? s.tracker_pid : 0;
}

void track_segment(std::string_view name) {
  check_name(name);
  State& s = state();
  std::scoped_lock lock(s.mutex);
  take_owner_lock(s);
  start_tracker(s);
  tell_tracker(s, 'R', name);
}

void untrack_segment(std::string_view name) noexcept {
  State& s = state();
  std::scoped_lock lock(s.mutex);
  tell_tracker(s, 'U', name);
}

void track_segment(std::string_view name, pid_t owner) {
  check_name(name);
  State& s = state();
  std::scoped_lock lock(s.mutex);
  take_owner_lock(s);
  start_tracker(s);
  tell_tracker(s, 'R', name, owner);
}

void untrack_segment(std::string_view name, pid_t owner) noexcept {
  State& s = state();
  std::scoped_lock lock(s.mutex);
  tell_tracker(s, 'U', name, owner);
}

}  // namespace mproc::detail

namespace mproc {

void detail::remove_segments_of(pid_t pid) noexcept {
  unlink_segments_of(pid);
  ::unlink(owner_lock_path(pid).c_str());
}

void detail::remove_segments_of_exited(pid_t pid) noexcept {
  // The lock file first: a sweeper that finds none meanwhile checks that the pid is gone (it
  // is: reaped) and removes the segments itself.
  if (::unlink(owner_lock_path(pid).c_str()) != 0 && errno == ENOENT &&
      ::access(kOwnerDir, W_OK) == 0)
    return;
  unlink_segments_of(pid);
}

std::size_t detail::count_segments_of(pid_t pid) {
  std::size_t count = 0;
  if (DIR* dir = ::opendir(kShmDir)) {
    while (dirent* entry = ::readdir(dir)) count += segment_owner(entry->d_name) == pid;
    ::closedir(dir);
  }
  return count;
}

void detail::after_fork_in_child() noexcept {
  // The mutex may have been held by another thread of the parent at fork time.
  new (&state().mutex) std::mutex;
}

}  // namespace mproc
