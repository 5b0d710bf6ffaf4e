#include "mproc/process.h"

#include <cxxabi.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <iostream>
#include <typeinfo>

#include "mproc/errors.h"
#include "mproc/log.h"
#include "mproc/shm.h"
#include "mproc/start_method.h"

#include "child_start.h"
#include "os_error.h"
#include "process_state.h"

namespace mproc {
namespace {

using detail::ProcessState;
using StatePtr = std::shared_ptr<ProcessState>;

// ---------------------------------------------------------------------------------------------
// Process-wide state. Each lives on the heap and is never destroyed, so that the atexit handler
// and late destructors of static Process objects can still use it. A forked child replaces each
// with a fresh one (leaking its copy of the parent's: another thread of the parent may have held
// its mutex at the fork).

struct Registry {
  std::mutex mutex;
  std::vector<StatePtr> children;  // started by this process and not yet reaped
};

struct Current {
  std::mutex mutex;
  std::string name = "MainProcess";
  std::vector<int> identity;
  bool daemon = false;
  std::string authkey;  // made on first use
};

Registry*& registry() {
  static Registry* r = new Registry;
  return r;
}
Current*& current() {
  static Current* c = new Current;
  return c;
}
std::shared_ptr<detail::ParentState>& parent_state() {
  static auto* p = new std::shared_ptr<detail::ParentState>;
  return *p;
}
std::atomic<int>& process_counter() {
  static std::atomic<int> counter{1};
  return counter;
}

std::string random_authkey() {
  std::string key(32, '\0');
  std::size_t got = 0;
  while (got < key.size()) {
    ssize_t n = ::getrandom(key.data() + got, key.size() - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      detail::throw_errno("read random bytes for the authkey");
    }
    got += static_cast<std::size_t>(n);
  }
  return key;
}

std::string current_authkey() {
  Current& c = *current();
  std::scoped_lock lock(c.mutex);
  if (c.authkey.empty()) c.authkey = random_authkey();
  return c.authkey;
}

void registry_add(const StatePtr& state) {
  Registry& r = *registry();
  std::scoped_lock lock(r.mutex);
  r.children.push_back(state);
}

void registry_remove(const ProcessState* state) {
  Registry& r = *registry();
  std::scoped_lock lock(r.mutex);
  std::erase_if(r.children, [&](const StatePtr& s) { return s.get() == state; });
}

std::vector<StatePtr> registry_snapshot() {
  Registry& r = *registry();
  std::scoped_lock lock(r.mutex);
  return r.children;
}

// Python's `_cleanup`: reaps the children that have finished.
void cleanup_children() {
  for (const StatePtr& s : registry_snapshot()) (void)detail::reap(s);
}

std::string demangle(const char* mangled) {
  int status = 0;
  char* plain = abi::__cxa_demangle(mangled, nullptr, nullptr, &status);
  if (status != 0 || plain == nullptr) return mangled;
  std::string result(plain);
  std::free(plain);  // NOLINT(cppcoreguidelines-no-malloc): __cxa_demangle's contract
  return result;
}

// `ns::Clock` -> `Clock`; `ns::Box<a::B>` -> `Box<a::B>`.
std::string unqualified(std::string name) {
  auto end = name.find('<');
  auto colon = name.rfind("::", end);
  if (colon != std::string::npos) name.erase(0, colon + 2);
  return name;
}

std::string identity_suffix(const std::vector<int>& identity) {
  std::string s;
  for (std::size_t i = 0; i < identity.size(); ++i) {
    if (i) s += ':';
    s += std::to_string(identity[i]);
  }
  return s;
}

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return -WTERMSIG(status);
  return 255;
}

const char* signal_name(int sig) {
  switch (sig) {
    case SIGTERM:
      return "SIGTERM";
    case SIGKILL:
      return "SIGKILL";
    case SIGINT:
      return "SIGINT";
    default:
      return "signal";
  }
}

void flush_stdio() noexcept {
  // Flushing a closed stdout/stderr fails (EBADF); that must not change the exit code.
  try {
    std::cout.flush();
    std::cerr.flush();
    std::clog.flush();
  } catch (...) {  // NOLINT(bugprone-empty-catch): a stream with exceptions enabled
  }
  std::fflush(nullptr);
}

// Terminates or kills a daemonic child and reaps it: SIGTERM, then SIGKILL once `grace` is over.
void stop_daemon(const StatePtr& s, const Deadline& grace) {
  if (!detail::wait_exit(s, grace)) {
    detail::send_signal(s, SIGKILL);
    (void)detail::wait_exit(s, Deadline::never());
  }
}

// Python's `util._exit_function` for children: terminate the daemonic ones, join all.
void join_children_at_exit() noexcept {
  try {
    auto children = registry_snapshot();
    if (children.empty()) return;
    for (const StatePtr& s : children) {
      if (s->daemon) detail::send_signal(s, SIGTERM);
    }
    auto grace = Deadline::after(kDaemonGracePeriod);
    for (const StatePtr& s : children) {
      if (s->daemon) stop_daemon(s, grace);
    }
    for (const StatePtr& s : children) {
      if (!s->daemon) {
        get_logger()->debug("joining {} (pid {}) at exit", *s->name, s->pid);
        (void)detail::wait_exit(s, Deadline::never());
      }
    }
  } catch (const std::exception& e) {
    detail::report_error(std::string("cannot join children at exit: ") + e.what());
  }
}

void exit_handler() { join_children_at_exit(); }

void register_exit_handler_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    // The logger's static must outlive the handler: make it exist before registering.
    (void)get_logger();
    std::atexit(exit_handler);
  });
}

void ensure(bool ok, const char* message) {
  if (!ok) throw ProcessError(message);
}
void check_not_closed(const ProcessState& s) {
  if (s.closed) throw ValueError("process object is closed");
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Reaping and signals.

bool detail::reap(const StatePtr& state) {
  ProcessState& s = *state;
  int code = 0;
  {
    std::scoped_lock lock(s.mutex);
    if (s.exitcode) return true;
    if (!s.started || s.is_self || s.creator_pid != ::getpid()) return false;
    int status = 0;
    pid_t r = 0;
    if (s.status_fd) {
      r = read_forkserver_status(s.status_fd.get(), status) ? s.pid : 0;
    } else {
      r = retry_on_eintr([&] { return ::waitpid(s.pid, &status, WNOHANG); });
    }
    if (r == 0) return false;
    if (r < 0) {
      // Someone else reaped it (SIGCHLD ignored, a waitpid(-1) elsewhere): it is gone, its
      // status lost.
      report_error("cannot get the exit status of pid " + std::to_string(s.pid) + ": " +
                   std::strerror(errno) + " (reported as exit code 255)");
      status = 255 << 8;
    }
    code = decode_status(status);
    s.exitcode = code;
  }
  remove_segments_of(s.pid);
  registry_remove(&s);
  get_logger()->debug("process {} (pid {}) exited with exitcode {}", s.name.value_or("?"), s.pid,
                      code);
  return true;
}

bool detail::wait_exit(const StatePtr& state, const Deadline& deadline) {
  for (;;) {
    if (reap(state)) return true;
    if (!wait_readable(exit_fd(*state), deadline)) return reap(state);
    // Readable: the child has exited; the next reap finds its status (yield in case the kernel
    // has not quite made it waitable yet).
    if (!reap(state)) ::sched_yield();
  }
}

void detail::send_signal(const StatePtr& state, int sig) {
  ProcessState& s = *state;
  std::scoped_lock lock(s.mutex);
  if (s.exitcode) return;  // reaped: its pid may belong to someone else now
  get_logger()->debug("sending {} to {} (pid {})", signal_name(sig), s.name.value_or("?"), s.pid);
  if (!s.pidfd) return;  // a child of the fork server that was gone before start() returned
  if (pidfd_send_signal(s.pidfd.get(), sig) != 0 && errno != ESRCH) {
    throw_errno("send a signal to pid " + std::to_string(s.pid));
  }
}

// ---------------------------------------------------------------------------------------------
// Process

Process::Process() : Process(ProcessOptions{}) {}

Process::Process(ProcessOptions options) : state_(std::make_shared<ProcessState>()) {
  ProcessState& s = *state_;
  int count = process_counter().fetch_add(1);
  Current& c = *current();
  {
    std::scoped_lock lock(c.mutex);
    s.identity = c.identity;
    s.daemon = options.daemon.value_or(c.daemon);
  }
  s.identity.push_back(count);
  // Python: `name or <default>`: an empty name also gets the default.
  if (options.name && !options.name->empty()) s.name = std::move(options.name);
  s.authkey = current_authkey();
  s.creator_pid = ::getpid();
  s.start_method = options.start_method;
}

Process::Process(Process&& other) noexcept
    : target_(std::move(other.target_)),
      sent_call_(std::move(other.sent_call_)),
      state_(std::move(other.state_)) {}

Process& Process::operator=(Process&& other) noexcept {
  if (this != &other) {
    release();
    target_ = std::move(other.target_);
    sent_call_ = std::move(other.sent_call_);
    state_ = std::move(other.state_);
  }
  return *this;
}

Process::~Process() { release(); }

void Process::release() noexcept {
  StatePtr s = std::move(state_);
  if (!s || s->creator_pid != ::getpid() || !s->started || s->closed) return;
  try {
    if (detail::reap(s)) return;
    if (s->daemon) {
      detail::send_signal(s, SIGTERM);
      stop_daemon(s, Deadline::after(kDaemonGracePeriod));
    } else {
      get_logger()->debug("{} (pid {}) outlives its Process object; joined at exit", *s->name,
                          s->pid);
    }
  } catch (const std::exception& e) {
    detail::report_error(std::string("cannot release a process: ") + e.what());
  }
}

void Process::run() {
  if (target_) target_();
}

std::string Process::name() const {
  if (!state_) throw ValueError("process object was moved from");
  {
    std::scoped_lock lock(state_->mutex);
    if (state_->name) return *state_->name;
  }
  // Python: type(self).__name__ + '-' + identity. The dynamic type is only known outside the
  // constructors, so the default is computed on demand and fixed at start().
  return unqualified(demangle(typeid(*this).name())) + "-" + identity_suffix(state_->identity);
}

void Process::set_name(std::string name) {
  if (!state_) throw ValueError("process object was moved from");
  bool is_self = false;
  {
    std::scoped_lock lock(state_->mutex);
    state_->name = name;
    is_self = state_->is_self;
  }
  if (is_self) current_process().set_name(std::move(name));
}

bool Process::daemon() const {
  if (!state_) throw ValueError("process object was moved from");
  return state_->daemon;
}

void Process::set_daemon(bool daemon) {
  if (!state_) throw ValueError("process object was moved from");
  ensure(!state_->started, "process has already started");
  state_->daemon = daemon;
}

StartMethod Process::start_method() const {
  if (!state_) throw ValueError("process object was moved from");
  std::scoped_lock lock(state_->mutex);
  return state_->start_method.value_or(default_start_method());
}

void Process::set_start_method(StartMethod method) {
  if (!state_) throw ValueError("process object was moved from");
  ensure(!state_->started, "process has already started");
  state_->start_method = method;
}

std::string Process::authkey() const {
  if (!state_) throw ValueError("process object was moved from");
  return state_->authkey;
}

void Process::set_authkey(std::string key) {
  if (!state_) throw ValueError("process object was moved from");
  state_->authkey = std::move(key);
}

void Process::start() {
  if (!state_) throw ValueError("process object was moved from");
  ProcessState& s = *state_;
  check_not_closed(s);
  ensure(!s.started, "cannot start a process twice");
  ensure(s.creator_pid == ::getpid(), "can only start a process object created by current process");
  ensure(!current_process().daemon(), "daemonic processes are not allowed to have children");
  register_exit_handler_once();
  cleanup_children();
  s.name = name();
  s.creator_name = current_process().name();
  // Whatever the parent's stdio buffers hold would otherwise be written twice.
  flush_stdio();

  const StartMethod method = start_method();
  s.start_method = method;
  detail::LaunchedChild launched;
  if (method == StartMethod::fork) {
    detail::warn_once_if_threaded("Process.start()");
    launched.pid = ::fork();
    if (launched.pid < 0) detail::throw_errno("fork");
    if (launched.pid == 0) bootstrap();
  } else {
    if (!sent_call_) {
      throw ProcessError(
          target_ ? "under the " + std::string(to_string(method)) +
                        " start method a Process target must be a registered task (MPROC_TASK) "
                        "whose arguments can be serialized: this one is a lambda or has an "
                        "argument without a wire form (use the fork start method, or register it)"
                  : "a Process subclass that overrides run() can only be started by fork");
    }
    launched = detail::launch_child(method,
                                    {.name = *s.name,
                                     .identity = s.identity,
                                     .daemon = s.daemon,
                                     .authkey = s.authkey,
                                     .parent_pid = ::getpid(),
                                     .parent_name = s.creator_name,
                                     .start_method = method},
                                    sent_call_);
  }
  const pid_t pid = launched.pid;

  // No one else reaps our child, so its pid stays valid for pidfd_open even if it already exited.
  // (A child of the fork server may be gone and reaped already: its status is on status_fd.)
  int fd = detail::pidfd_open(pid);
  if (fd < 0 && !launched.status_fd) {
    int error = errno;
    ::kill(pid, SIGKILL);
    int status = 0;
    (void)detail::retry_on_eintr([&] { return ::waitpid(pid, &status, 0); });
    detail::throw_errno(error, "open a pidfd for the new process");
  }
  {
    std::scoped_lock lock(s.mutex);
    s.pid = pid;
    s.pidfd.reset(fd);
    s.status_fd = std::move(launched.status_fd);
    s.started = true;
  }
  registry_add(state_);
  get_logger()->debug("started {} (pid {}{})", *s.name, pid, s.daemon ? ", daemon" : "");
}

void Process::bootstrap() {
  ProcessState& s = *state_;
  s.is_self = true;
  s.started = true;
  s.pid = ::getpid();
  detail::run_as_child({.name = *s.name,
                        .identity = s.identity,
                        .daemon = s.daemon,
                        .authkey = s.authkey,
                        .parent_pid = s.creator_pid,
                        .parent_name = s.creator_name,
                        .start_method = StartMethod::fork},
                       [this] { run(); });
}

void detail::run_as_child(const ChildIdentity& me, const std::function<void()>& body) {
  detail::after_fork_in_child();

  // This process's own world: a fresh counter, no children yet, itself as current process. A
  // forked child gets new objects (another thread of the parent may have held their mutexes at
  // the fork; the copies are left alone). A child of spawn or the fork server never ran another
  // thread: it reuses its own, so that nothing is left unreachable when it exits (std::exit).
  const bool forked = me.start_method == StartMethod::fork;
  process_counter().store(1);
  if (forked) {
    registry() = new Registry;
    current() = new Current;
  } else {
    registry()->children.clear();
  }
  Current& self = *current();
  self.name = me.name;
  self.identity = me.identity;
  self.daemon = me.daemon;
  self.authkey = me.authkey;
  detail::set_log_process_name(me.name);
  detail::inherit_start_method(me.start_method);

  // A child of the fork server is not ours to signal at its parent's death: the server does it.
  if (me.daemon && me.start_method != StartMethod::forkserver) {
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    // The parent may have died before prctl: then we were reparented and no signal will come.
    if (::getppid() != me.parent_pid) ::raise(SIGTERM);
  }

  auto parent = std::make_shared<detail::ParentState>();
  parent->pid = me.parent_pid;
  parent->name = me.parent_name;
  parent->fd.reset(detail::pidfd_open(me.parent_pid));
  const bool parent_is_alive =
      parent->fd && (me.start_method == StartMethod::forkserver || ::getppid() == me.parent_pid);
  if (!parent_is_alive) {
    // The parent is gone already (maybe its pid is even reused): a pipe at EOF stands for it.
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) == 0) {
      ::close(fds[1]);
      parent->fd.reset(fds[0]);
    }
  }
  parent_state() = std::move(parent);

  // As Python's `_close_stdin`: children do not compete for the terminal.
  int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (devnull >= 0) {
    ::dup2(devnull, STDIN_FILENO);
    ::close(devnull);
  }

  int code = 0;
  try {
    get_logger()->debug("child process calling run()");
    body();
  } catch (const std::exception& e) {
    code = 1;
    std::fprintf(stderr, "Process %s: %s: %s\n", me.name.c_str(),
                 mproc::demangle(typeid(e).name()).c_str(), e.what());
  } catch (...) {
    code = 1;
    const std::type_info* type = abi::__cxa_current_exception_type();
    std::fprintf(stderr, "Process %s: %s\n", me.name.c_str(),
                 type ? mproc::demangle(type->name()).c_str() : "unknown exception");
  }
  join_children_at_exit();
  try {
    get_logger()->debug("process exiting with exitcode {}", code);
  } catch (...) {  // NOLINT(bugprone-empty-catch): stderr may be closed
  }
  flush_stdio();
  // A forked child leaves without the parent's atexit handlers and static destructors (they are
  // the parent's to run). A child started by spawn or by the fork server is a program of its own
  // and ends as one: its atexit handlers and static destructors run, as in Python.
  if (me.start_method != StartMethod::fork) std::exit(code);
  ::_exit(code);
}

void Process::join() { (void)join(Deadline::never()); }

bool Process::join(const Deadline& deadline) {
  if (!state_) throw ValueError("process object was moved from");
  ProcessState& s = *state_;
  check_not_closed(s);
  ensure(!s.is_self, "cannot join the current process");
  ensure(s.creator_pid == ::getpid(), "can only join a child process");
  ensure(s.started, "can only join a started process");
  return detail::wait_exit(state_, deadline);
}

bool Process::is_alive() const {
  if (!state_) throw ValueError("process object was moved from");
  const ProcessState& s = *state_;
  check_not_closed(s);
  if (s.is_self) return true;
  ensure(s.creator_pid == ::getpid(), "can only test a child process");
  if (!s.started) return false;
  return !detail::reap(state_);
}

namespace {
void signal_child(const StatePtr& state, int sig, const char* what) {
  if (!state) throw ValueError("process object was moved from");
  check_not_closed(*state);
  ensure(!state->is_self && state->creator_pid == ::getpid(),
         (std::string("can only ") + what + " a child process").c_str());
  ensure(state->started, (std::string("can only ") + what + " a started process").c_str());
  detail::send_signal(state, sig);
}
}  // namespace

void Process::terminate() { signal_child(state_, SIGTERM, "terminate"); }
void Process::kill() { signal_child(state_, SIGKILL, "kill"); }
void Process::interrupt() { signal_child(state_, SIGINT, "interrupt"); }

void Process::close() {
  if (!state_) throw ValueError("process object was moved from");
  ProcessState& s = *state_;
  if (s.closed) return;
  if (s.started && !s.is_self && s.creator_pid == ::getpid()) {
    if (!detail::reap(state_)) {
      throw ValueError(
          "Cannot close a process while it is still running. You should first call join() or "
          "terminate().");
    }
    std::scoped_lock lock(s.mutex);
    s.pidfd.reset();
  }
  s.closed = true;
}

pid_t Process::pid() const {
  if (!state_) throw ValueError("process object was moved from");
  check_not_closed(*state_);
  return state_->pid;
}

std::optional<pid_t> Process::ident() const {
  if (!state_) throw ValueError("process object was moved from");
  check_not_closed(*state_);
  if (!state_->started) return std::nullopt;
  return state_->pid;
}

std::optional<int> Process::exitcode() const {
  if (!state_) throw ValueError("process object was moved from");
  check_not_closed(*state_);
  if (!state_->started || state_->is_self) return std::nullopt;
  (void)detail::reap(state_);
  std::scoped_lock lock(state_->mutex);
  return state_->exitcode;
}

int Process::sentinel() const {
  if (!state_) throw ValueError("process object was moved from");
  check_not_closed(*state_);
  if (!state_->pidfd && !state_->status_fd) throw ValueError("process not started");
  return detail::exit_fd(*state_);
}

ChildProcess Process::handle() const {
  if (!state_) throw ValueError("process object was moved from");
  if (!state_->started || state_->is_self) throw ValueError("process not started");
  return ChildProcess(state_);
}

// ---------------------------------------------------------------------------------------------
// ChildProcess: a started child of this process (never closed, never the current process).

std::string ChildProcess::name() const {
  std::scoped_lock lock(state_->mutex);
  return state_->name.value_or("");
}
pid_t ChildProcess::pid() const { return state_->pid; }
bool ChildProcess::daemon() const { return state_->daemon; }
bool ChildProcess::is_alive() const { return !detail::reap(state_); }
std::optional<int> ChildProcess::exitcode() const {
  (void)detail::reap(state_);
  std::scoped_lock lock(state_->mutex);
  return state_->exitcode;
}
int ChildProcess::sentinel() const {
  check_not_closed(*state_);
  return detail::exit_fd(*state_);
}
void ChildProcess::join() const { (void)join(Deadline::never()); }
bool ChildProcess::join(const Deadline& deadline) const {
  check_not_closed(*state_);
  return detail::wait_exit(state_, deadline);
}
void ChildProcess::terminate() const { detail::send_signal(state_, SIGTERM); }
void ChildProcess::kill() const { detail::send_signal(state_, SIGKILL); }

// ---------------------------------------------------------------------------------------------
// The current process, the parent, the children.

std::string CurrentProcess::name() const {
  Current& c = *current();
  std::scoped_lock lock(c.mutex);
  return c.name;
}
void CurrentProcess::set_name(std::string name) {
  Current& c = *current();
  {
    std::scoped_lock lock(c.mutex);
    c.name = name;
  }
  detail::set_log_process_name(std::move(name));
}
pid_t CurrentProcess::pid() const { return ::getpid(); }
bool CurrentProcess::daemon() const {
  Current& c = *current();
  std::scoped_lock lock(c.mutex);
  return c.daemon;
}
std::string CurrentProcess::authkey() const { return current_authkey(); }
void CurrentProcess::set_authkey(std::string key) {
  Current& c = *current();
  std::scoped_lock lock(c.mutex);
  c.authkey = std::move(key);
}
CurrentProcess current_process() { return CurrentProcess{}; }

pid_t ParentProcess::pid() const { return state_->pid; }
std::string ParentProcess::name() const { return state_->name; }
bool ParentProcess::is_alive() const {
  return !detail::wait_readable(state_->fd.get(), Deadline::now());
}
void ParentProcess::join() const { (void)join(Deadline::never()); }
bool ParentProcess::join(const Deadline& deadline) const {
  return detail::wait_readable(state_->fd.get(), deadline);
}
int ParentProcess::sentinel() const { return state_->fd.get(); }

std::optional<ParentProcess> parent_process() {
  const auto& state = parent_state();
  if (!state) return std::nullopt;
  return ParentProcess(state);
}

std::vector<ChildProcess> active_children() {
  cleanup_children();
  std::vector<ChildProcess> live;
  for (StatePtr& s : registry_snapshot()) live.push_back(ChildProcess(std::move(s)));
  return live;
}

int cpu_count() noexcept {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
  long n = ::sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<int>(n) : 1;
}

}  // namespace mproc
