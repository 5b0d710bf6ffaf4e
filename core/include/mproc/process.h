// mproc/process.h
//
// `Process` runs a callable in a forked child process, like Python's `multiprocessing.Process`
// under the `fork` start method; `current_process()`, `parent_process()`, `active_children()` and
// `cpu_count()` are the module functions of the same names.
//
//   void worker(int interval) { ... }
//   mproc::Process p(worker, 3);                       // Process(target=worker, args=(3,))
//   p.start();
//   fmt::print("{} {} {}\n", p.pid(), p.name(), p.is_alive());   // 1908 Process-1 true
//   p.join();                                          // *p.exitcode() == 0
//
//   struct Clock : mproc::Process {                    // a subclass overriding run()
//     void run() override { ... }
//   };
//
// The child. It runs `run()` (by default: the target with its arguments) and then leaves with
// `_exit`, never through the parent's atexit handlers or static destructors, after flushing stdio:
//   - normal return: exit code 0 (a value the target returns is ignored, as in Python);
//   - an exception escaping `run()`: exit code 1, and `Process <name>: <type>: <what>` on stderr;
//   - `_exit(n)` inside the target: exit code n (`std::exit(n)` too, but it also runs the atexit
//     handlers and static destructors inherited from the parent: prefer `_exit`);
//   - killed by signal S: `exitcode() == -S`.
// Before `run()` the child: becomes `current_process()` (its own counter for children's names
// `Process-1:1`, ..., its own `active_children()`), knows its `parent_process()`, reads stdin from
// /dev/null (as Python's `_close_stdin`), and, if a daemon, asks the kernel for SIGTERM when its
// parent dies (PR_SET_PDEATHSIG; note: when the parent *thread* that called start() ends).
// After `run()` it does what Python's `_exit_function` does: terminates its daemonic children and
// joins the others.
//
// SIGINT (Python: the child's KeyboardInterrupt gives exit code 1). C++ has no KeyboardInterrupt:
// the child keeps the signal dispositions it inherited. With SIG_DFL, SIGINT kills it and
// `exitcode() == -SIGINT` (Python's `test_interrupt_no_handler`); a program that wants Python's
// exit code 1 installs a handler whose flag makes the target throw.
//
// Threads in the child (Python waits for non-daemon threads): the child ends when `run()`
// returns; threads the target started must be joined by the target (a `std::jthread` does so on
// its own); a detached thread is ended with the process, like a Python daemon thread.
//
// atexit in the child: under fork, handlers registered with `std::atexit` (by the parent or by
// the child) do not run when the child ends, because the child leaves with `_exit` (Python's fork
// start method does the same with `os._exit`). Use RAII inside the target instead. A child
// started by spawn or by the fork server (start_method.h) is a program of its own: it ends with
// `std::exit`, so its atexit handlers and static destructors run.
//
// Thread safety: the queries, `join`, `terminate`, `kill`, `is_alive` and `exitcode` may be called
// from several threads at once (one of them reaps; the others see the result). `start`, `close`,
// the setters, assignment and destruction need the caller's own synchronization. Fork safety:
// `start()` forks; forking a multi-threaded parent is only safe if no other thread holds a lock
// the child needs (malloc's, the logger's): prefer starting processes before starting threads.
//
// Lifetime (the destructor): a never-started, closed, joined or already-exited process is simply
// released (an exited child is reaped, so no zombie stays). A child that still runs:
//   - daemon: SIGTERM, then SIGKILL if it has not exited within `kDaemonGracePeriod`, then reaped
//     (Python terminates daemonic children at exit);
//   - not a daemon: left running and handed to a process-wide registry, which reaps it once it has
//     finished (at the next `start()` or `active_children()`) and joins it at normal exit
//     (`std::exit`/return from main), as Python joins non-daemonic children at interpreter exit.
// At normal exit, daemonic children still running are terminated (same grace) and all children
// joined. The destructor never throws (failures go to the mproc logger). `Process` is move-only.
//
// Misuse: Python's assertion failures (start twice, join before start, a daemon starting children,
// using the object from a process that did not create it) are `ProcessError` here; the
// `ValueError`s are Python's (a closed object, close() while running, sentinel before start).
//
// Requirements: Linux 5.3 or later (pidfd). If something else reaps our child (SIGCHLD set to
// SIG_IGN, a `waitpid(-1)` elsewhere), its status is lost: `exitcode()` is then 255.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <concepts>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "mproc/deadline.h"
#include "mproc/detail/call_codec.h"

namespace mproc {

// How a child process is started (start_method.h): a copy of this process (fork), a fork of the
// single-threaded fork server, or an exec of this same program (spawn).
enum class StartMethod { fork, forkserver, spawn };

class Process;
struct ProcessOptions;

namespace detail {
struct ProcessState;
struct ParentState;

// An lvalue of the decayed copy the Process keeps (the child calls the target on it).
template <class T>
using StoredRef = std::add_lvalue_reference_t<std::decay_t<T>>;
// A target for Process(target): callable without arguments, and not an options struct or a
// Process (so that copy/move construction are never mistaken for it).
template <class F>
concept ProcessTarget =
    std::invocable<StoredRef<F>> && !std::same_as<std::remove_cvref_t<F>, ProcessOptions> &&
    !std::derived_from<std::remove_cvref_t<F>, Process>;
// A target callable with (copies of) these arguments.
template <class F, class... Args>
concept ProcessCall = std::invocable<StoredRef<F>, StoredRef<Args>...>;
}  // namespace detail

// Python's keyword arguments `name=` and `daemon=`. An unset name becomes `Process-<n>` (or
// `<Subclass>-<n>`, after the class's unqualified name), numbered as in Python; an unset daemon
// flag is the creating process's own flag.
struct ProcessOptions {
  // (The explicit initializers keep -Wmissing-field-initializers quiet on `{.daemon = true}`.)
  std::optional<std::string> name = std::nullopt;
  std::optional<bool> daemon = std::nullopt;
  // Unset: the default context's method when start() is called (start_method.h).
  std::optional<StartMethod> start_method = std::nullopt;
};

// How long a daemonic child gets between SIGTERM and SIGKILL when its `Process` is destroyed
// while it runs, or when its parent exits normally.
inline constexpr std::chrono::milliseconds kDaemonGracePeriod{1000};

// A read-only, copyable view of a child started by this process: what `active_children()` returns.
// It shares the state of the `Process` that started the child (reaping through either is seen by
// both), and stays valid after that `Process` is destroyed.
class ChildProcess {
 public:
  [[nodiscard]] std::string name() const;
  [[nodiscard]] pid_t pid() const;
  [[nodiscard]] bool daemon() const;
  [[nodiscard]] bool is_alive() const;
  [[nodiscard]] std::optional<int> exitcode() const;
  [[nodiscard]] int sentinel() const;
  void join() const;
  bool join(const Deadline& deadline) const;
  template <class Rep, class Period>
  bool join(std::chrono::duration<Rep, Period> timeout) const {
    return join(Deadline::after(timeout));
  }
  void terminate() const;
  void kill() const;

 private:
  friend class Process;
  friend std::vector<ChildProcess> active_children();
  explicit ChildProcess(std::shared_ptr<detail::ProcessState> state) : state_(std::move(state)) {}
  std::shared_ptr<detail::ProcessState> state_;
};

class Process {
 public:
  // For subclasses that override run().
  Process();
  explicit Process(ProcessOptions options);

  // Process(target=f): `target` is any callable taking no arguments, copied or moved in (it may
  // be move-only).
  template <detail::ProcessTarget F>
  explicit Process(F&& target, ProcessOptions options = {}) : Process(std::move(options)) {
    set_target(std::forward<F>(target));
  }

  // Process(target=f, args=(a, b)): the arguments are copied (decayed) at construction, so they
  // are the parent's values at that moment, as Python pickles them then.
  template <class F, class... Args>
  Process(F&& target, Args&&... args) requires detail::ProcessCall<F, Args...> &&
      (sizeof...(Args) > 0)
      : Process(ProcessOptions{}) {
    set_target(std::forward<F>(target), std::forward<Args>(args)...);
  }

  // Process(target=f, args=(a, b), name=..., daemon=...).
  template <class F, class... Args>
  Process(ProcessOptions options, F&& target,
          Args&&... args) requires detail::ProcessCall<F, Args...> : Process(std::move(options)) {
    set_target(std::forward<F>(target), std::forward<Args>(args)...);
  }

  Process(Process&& other) noexcept;
  // Releases what this object held first, exactly as the destructor does.
  Process& operator=(Process&& other) noexcept;
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  virtual ~Process();

  // What the child runs; the default calls the target. Override it in a subclass (seed n).
  virtual void run();

  // Forks the child, which runs run(). Throws ProcessError when started twice, when this object
  // was created by another process, or when the current process is a daemon ("daemonic processes
  // are not allowed to have children"); ValueError when closed; std::system_error when fork fails.
  void start();

  // Waits until the child has exited and reaps it. Woken by the child's exit itself (poll(2) on a
  // pidfd), signals do not end the wait (EINTR is retried). The timed forms return whether the
  // child has exited (Python's join returns None either way: check exitcode()). Throws ValueError
  // when closed, ProcessError when not started, when called in the child on itself or in a
  // process that did not start it.
  void join();
  bool join(const Deadline& deadline);
  template <class Rep, class Period>
  bool join(std::chrono::duration<Rep, Period> timeout) {
    return join(Deadline::after(timeout));
  }

  // True between start() and the child's exit (reaps an exited child). In the child, true for
  // its own Process object. Throws ValueError when closed.
  [[nodiscard]] bool is_alive() const;

  // SIGTERM / SIGKILL / SIGINT to the child; nothing once it has been reaped. Throws ValueError
  // when closed, ProcessError when not started.
  void terminate();
  void kill();
  void interrupt();

  // Releases the pidfd. Throws ValueError while the child runs; idempotent. Afterwards
  // is_alive(), join(), terminate(), kill(), pid(), exitcode() and sentinel() throw ValueError.
  void close();

  // `Process-1`, `Process-1:2`, ... (or the name given). Python's `name` property.
  [[nodiscard]] std::string name() const;
  void set_name(std::string name);
  [[nodiscard]] bool daemon() const;
  // Throws ProcessError after start().
  void set_daemon(bool daemon);
  // The method start() uses: the one set here or given in the options, else the default
  // context's (start_method.h). Setting it throws ProcessError after start().
  [[nodiscard]] StartMethod start_method() const;
  void set_start_method(StartMethod method);
  // The child's key for authenticated connections, inherited from the creating process.
  [[nodiscard]] std::string authkey() const;
  void set_authkey(std::string key);

  // The child's pid; 0 before start() (ident() is Python's None then). ValueError when closed.
  [[nodiscard]] pid_t pid() const;
  [[nodiscard]] std::optional<pid_t> ident() const;
  // nullopt before start() and while running; then 0, the exit status, or minus the signal.
  [[nodiscard]] std::optional<int> exitcode() const;
  // An fd that becomes readable when the child exits (a pidfd), for poll(2) or mproc::wait.
  // Owned by this object (valid until close() or destruction). ValueError before start().
  [[nodiscard]] int sentinel() const;

  // A copyable view sharing this process's state (what active_children() lists).
  [[nodiscard]] ChildProcess handle() const;

 private:
  // The target and its arguments live in one heap closure shared by std::function's copies, so
  // that move-only targets and arguments work too.
  template <class F, class... Args>
  void set_target(F&& target, Args&&... args) {
    auto closure = std::make_shared<std::tuple<std::decay_t<F>, std::decay_t<Args>...>>(
        std::forward<F>(target), std::forward<Args>(args)...);
    target_ = [closure] {
      std::apply([](auto& fn, auto&... a) { (void)std::invoke(fn, a...); }, *closure);
    };
    // Under spawn and forkserver the target travels by name, its arguments serialized; targets
    // that cannot (lambdas, arguments without a wire form) are refused by start() instead.
    if constexpr (detail::sendable_call<std::decay_t<F>, std::decay_t<Args>...>()) {
      sent_call_ = [closure] {
        return std::apply([](const auto&... v) { return detail::encode_sent_call(v...); },
                          *closure);
      };
    } else {
      sent_call_ = nullptr;
    }
  }
  void release() noexcept;
  [[noreturn]] void bootstrap();
  void start_by_exec(StartMethod method);

  std::function<void()> target_;
  std::function<detail::SentCall()> sent_call_;
  std::shared_ptr<detail::ProcessState> state_;
};

// Python's `current_process()`: the process this code runs in. In the main process its name is
// `MainProcess`; in a child started by `Process` it carries that Process's name, daemon flag and
// authkey. Thread safety: all members may be called from any thread.
class CurrentProcess {
 public:
  [[nodiscard]] std::string name() const;
  void set_name(std::string name);  // also renames this process in log lines
  [[nodiscard]] pid_t pid() const;
  [[nodiscard]] std::optional<pid_t> ident() const { return pid(); }
  [[nodiscard]] bool daemon() const;
  [[nodiscard]] bool is_alive() const { return true; }
  [[nodiscard]] std::optional<int> exitcode() const { return std::nullopt; }
  // 32 random bytes made by the main process, inherited by every child (Python's authkey).
  [[nodiscard]] std::string authkey() const;
  void set_authkey(std::string key);
};
[[nodiscard]] CurrentProcess current_process();

// Python's `parent_process()`: the process that started this one; nullopt in the main process
// (and in a process forked by other means than `Process`). It is not our child, yet is_alive()
// and join() work, on a pidfd of the parent. Copyable; the copies share the pidfd.
class ParentProcess {
 public:
  [[nodiscard]] pid_t pid() const;
  [[nodiscard]] std::optional<pid_t> ident() const { return pid(); }
  [[nodiscard]] std::string name() const;
  [[nodiscard]] bool is_alive() const;
  // Waits until the parent has exited (woken by its exit; EINTR retried). The timed forms return
  // whether it has.
  void join() const;
  bool join(const Deadline& deadline) const;
  template <class Rep, class Period>
  bool join(std::chrono::duration<Rep, Period> timeout) const {
    return join(Deadline::after(timeout));
  }
  // Readable once the parent has exited.
  [[nodiscard]] int sentinel() const;

 private:
  friend std::optional<ParentProcess> parent_process();
  explicit ParentProcess(std::shared_ptr<detail::ParentState> state) : state_(std::move(state)) {}
  std::shared_ptr<detail::ParentState> state_;
};
[[nodiscard]] std::optional<ParentProcess> parent_process();

// Python's `active_children()`: reaps the children of this process that have finished, then
// returns those still running (including those whose `Process` was destroyed while they ran).
[[nodiscard]] std::vector<ChildProcess> active_children();

// The number of CPUs this process may run on (sched_getaffinity), at least 1.
[[nodiscard]] int cpu_count() noexcept;

}  // namespace mproc
