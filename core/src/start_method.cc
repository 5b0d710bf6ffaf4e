#include "mproc/start_method.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>

#include "mproc/detail/init_hook.h"
#include "mproc/errors.h"
#include "mproc/init.h"

#include "child_start.h"
#include "process_state.h"

namespace mproc {
namespace {

// The default context: its method, and whether something fixed it (a set_start_method, or a
// get_start_method/get_context that read it).
struct DefaultContext {
  std::mutex mutex;
  std::optional<StartMethod> method;
  bool fixed = false;
};

// Never destroyed (used after fork and at exit); a child replaces it, see inherit_start_method.
DefaultContext*& default_context_slot() {
  static auto* context = new DefaultContext;
  return context;
}
DefaultContext& default_context() { return *default_context_slot(); }

StartMethod from_environment() {
  const char* value = std::getenv("MPROC_START_METHOD");
  if (value == nullptr || *value == '\0') return StartMethod::fork;
  return parse_start_method(value);
}

StartMethod current_method(DefaultContext& c) {
  if (!c.method) c.method = from_environment();
  return *c.method;
}

std::atomic<bool> init_called{false};
std::string& saved_program_name() {
  static auto* name = new std::string("mproc");
  return *name;
}

std::mutex executable_mutex;
std::string& executable() {
  static auto* path = new std::string("/proc/self/exe");
  return *path;
}

detail::TaskDirectory& directory() {
  static detail::TaskDirectory d;
  return d;
}

std::atomic<detail::InitHook> init_hook{nullptr};

}  // namespace

std::string_view to_string(StartMethod method) noexcept {
  switch (method) {
    case StartMethod::fork:
      return "fork";
    case StartMethod::forkserver:
      return "forkserver";
    case StartMethod::spawn:
      return "spawn";
  }
  return "fork";
}

StartMethod parse_start_method(std::string_view name) {
  if (name == "fork") return StartMethod::fork;
  if (name == "forkserver") return StartMethod::forkserver;
  if (name == "spawn") return StartMethod::spawn;
  throw ValueError("cannot find context for '" + std::string(name) +
                   "' (the start methods are fork, forkserver and spawn)");
}

std::vector<std::string> get_all_start_methods() {
  std::vector<std::string> all{"fork", "spawn", "forkserver"};
  const std::string first(to_string(default_start_method()));
  std::erase(all, first);
  all.insert(all.begin(), first);
  return all;
}

StartMethod default_start_method() {
  DefaultContext& c = default_context();
  std::scoped_lock lock(c.mutex);
  return current_method(c);
}

std::optional<std::string> get_start_method(bool allow_none) {
  DefaultContext& c = default_context();
  std::scoped_lock lock(c.mutex);
  if (!c.fixed && allow_none) return std::nullopt;
  c.fixed = true;
  return std::string(to_string(current_method(c)));
}

std::string get_start_method() { return *get_start_method(false); }

void set_start_method(StartMethod method, bool force) {
  DefaultContext& c = default_context();
  std::scoped_lock lock(c.mutex);
  if (c.fixed && !force) throw ProcessError("context has already been set");
  c.method = method;
  c.fixed = true;
}

void set_start_method(std::string_view method, bool force) {
  set_start_method(parse_start_method(method), force);
}

void set_executable(std::string path) {
  std::scoped_lock lock(executable_mutex);
  executable() = std::move(path);
}

std::string get_executable() {
  std::scoped_lock lock(executable_mutex);
  return executable();
}

void Context::set_start_method(std::string_view /*method*/, bool /*force*/) const {
  throw ValueError("cannot set the start method of a concrete context (" +
                   std::string(to_string(method_)) + ")");
}

Context get_context() { return Context(parse_start_method(get_start_method())); }
Context get_context(std::string_view method) { return Context(parse_start_method(method)); }

void init(int argc, char** argv) {
  if (argc > 0 && argv != nullptr && argv[0] != nullptr) saved_program_name() = argv[0];
  init_called.store(true);
  if (const char* role = std::getenv(detail::kRoleVariable)) {
    const std::string which(role);
    ::unsetenv(detail::kRoleVariable);
    ::unsetenv(detail::kChannelVariable);
    if (which == "process") detail::run_started_child(detail::kChannelFd);
    if (which == "forkserver") detail::serve_as_forkserver(detail::kChannelFd);
    std::fprintf(stderr, "mproc: unknown process role '%s'\n", which.c_str());
    std::_Exit(1);
  }
  if (default_start_method() == StartMethod::forkserver) detail::ensure_forkserver();
  if (detail::InitHook hook = init_hook.load()) hook(argc, argv);
}

namespace detail {

void inherit_start_method(StartMethod method) noexcept {
  // As Python's child forces its start method. A forked child takes a new state (it may have
  // copied the mutex locked by another thread; the copy is left alone); a child of spawn or the
  // fork server never ran another thread and sets its own.
  if (method == StartMethod::fork) default_context_slot() = new DefaultContext;
  DefaultContext& c = default_context();
  c.method = method;
  c.fixed = true;
}

bool init_was_called() noexcept { return init_called.load(); }
std::string program_name() { return saved_program_name(); }

void set_task_directory(TaskDirectory d) noexcept { directory() = d; }

void set_init_hook(InitHook hook) noexcept { init_hook.store(hook); }

const TaskDirectory& task_directory() {
  if (directory().find == nullptr) {
    throw NotRegisteredError(
        "no task is registered in this program: a Process target under spawn or forkserver must "
        "be registered with MPROC_TASK");
  }
  return directory();
}

}  // namespace detail
}  // namespace mproc
