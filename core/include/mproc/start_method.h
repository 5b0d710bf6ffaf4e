// mproc/start_method.h
//
// How a new process is started: Python's `get_context(method)`, `set_start_method(method)`,
// `get_start_method()` and `get_all_start_methods()`.
//
//   int main(int argc, char** argv) {
//     mproc::init(argc, argv);                           // first line of main (init.h)
//     mproc::set_start_method("forkserver");             // or MPROC_START_METHOD=forkserver
//     mproc::Process p(worker, queue);                   // worker: an MPROC_TASK
//     auto ctx = mproc::get_context("spawn");
//     mproc::Process q = ctx.Process(worker, queue);     // this one by spawn
//   }
//
// The methods:
//   - fork: the child is a copy of the parent and runs any callable (lambdas included). Cheap, but
//     forking a parent that runs threads can copy a lock another thread held (the logger's,
//     malloc's) into a child that then deadlocks: the first fork of a multi-threaded process logs a
//     warning, as Python 3.12 does.
//   - forkserver: a single-threaded server process, started from `mproc::init` (or, after a crash,
//     anew on the next start) by exec of this same program, forks the children. They start from
//     the program's state right after `init`, never from a threaded parent.
//   - spawn: fork+exec of this same program; `mproc::init(argc, argv)` at the top of `main` turns
//     the new process into the child before main goes on.
// Under forkserver and spawn the target must be a registered task (MPROC_TASK) and its arguments
// are serialized: every IPC object of mproc (queues, Connection ends, Value/Array, the locks and
// other sync primitives, SharedMemory, manager proxies) travels by name (descriptors by
// SCM_RIGHTS) and the child attaches to the same object. Such a child inherits no descriptor but
// stdin (/dev/null), stdout and stderr.
//
// The default is fork, unlike Python 3.14 (forkserver): a C++ program's targets are often lambdas,
// which only fork can run. The environment variable MPROC_START_METHOD (fork, forkserver or
// spawn), read at the first use, changes the default without touching the program; children
// inherit their parent's method.
//
// Thread safety: all functions may be called from any thread.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mproc/process.h"

namespace mproc {

// Python's names: "fork", "forkserver", "spawn".
[[nodiscard]] std::string_view to_string(StartMethod method) noexcept;
// Throws ValueError for any other name.
[[nodiscard]] StartMethod parse_start_method(std::string_view name);

// The methods this platform supports, the default first: {"fork", "spawn", "forkserver"}, or with
// MPROC_START_METHOD set, that one first.
[[nodiscard]] std::vector<std::string> get_all_start_methods();

// The method of the default context; fixes it (a later set_start_method without force throws).
// With allow_none, nullopt while nothing has fixed it yet (and nothing is fixed).
[[nodiscard]] std::optional<std::string> get_start_method(bool allow_none);
[[nodiscard]] std::string get_start_method();

// Sets the default method. Throws ProcessError ("context has already been set") when it was fixed
// already, by an earlier call or by a first use, unless `force`; ValueError for an unknown name.
void set_start_method(std::string_view method, bool force = false);
void set_start_method(StartMethod method, bool force = false);

// A start method bound to its own Process factory (Python's concrete context).
class Context {
 public:
  explicit Context(StartMethod method) noexcept : method_(method) {}

  [[nodiscard]] StartMethod method() const noexcept { return method_; }
  [[nodiscard]] std::string get_start_method() const { return std::string(to_string(method_)); }
  [[nodiscard]] const Context& get_context() const noexcept { return *this; }
  // A concrete context's method cannot change: always throws ValueError (as Python).
  [[noreturn]] void set_start_method(std::string_view method, bool force = false) const;

  // `ctx.Process(target, args...)`, `ctx.Process(options, target, args...)`: a Process started
  // by this context's method.
  template <class... A>
  [[nodiscard]] mproc::Process Process(A&&... args) const {
    mproc::Process process(std::forward<A>(args)...);
    process.set_start_method(method_);
    return process;
  }

  bool operator==(const Context&) const = default;

 private:
  StartMethod method_;
};

// Python's `get_context(method)`: the context of that method, or of the default method (which it
// fixes) when none is given. Throws ValueError for an unknown name.
[[nodiscard]] Context get_context();
[[nodiscard]] Context get_context(std::string_view method);

// Python's `set_executable(path)`: the program a spawn child (and the fork server) runs, by
// default this very program ("/proc/self/exe"). It must be a build of the same program (the same
// registered tasks, and mproc::init at the top of main). A path that cannot be run makes start()
// throw std::system_error.
void set_executable(std::string path);
[[nodiscard]] std::string get_executable();

// The default method now, without fixing it (what a Process with no method of its own uses).
[[nodiscard]] StartMethod default_start_method();

namespace detail {
// The fork server this process uses: its address ("" before there is one) and, when this
// process started it, its pid (else 0). For tests and diagnostics.
[[nodiscard]] std::string forkserver_address_text();
[[nodiscard]] pid_t forkserver_pid();
// Replaces the key this process presents to its fork server (tests: a wrong key is refused).
void set_forkserver_authkey(std::string key);
}  // namespace detail

}  // namespace mproc
