// The task registry: name -> entry for the worker, function address / type -> entry for the
// submitter.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <typeindex>
#include <unordered_map>
#include <vector>

#include "mproc/errors.h"
#include "mproc/task.h"

#include "demangle.h"
#include "symbol_name.h"

namespace mproc {
namespace detail {
namespace {

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};

std::string describe(const TaskKey& key) {
  if (key.address == 0) return demangle(key.type->name());
  std::string name = function_name(key.address);
  if (!name.empty()) return name;
  return "a function of type " + demangle(key.type->name());
}

bool same_callable(const TaskKey& a, const TaskKey& b) {
  if (a.address != 0 || b.address != 0) return a.address == b.address;
  return std::type_index(*a.type) == std::type_index(*b.type);
}

class TaskRegistry {
 public:
  const TaskEntry& add(std::string name, TaskKey key, TaskInvoker invoke,
                       ObjectEncoder encode_object, BatchCodec batch) {
    std::unique_lock lock(mutex_);
    if (auto it = by_name_.find(name); it != by_name_.end()) {
      if (same_callable(it->second->key, key)) return *it->second;
      throw ValueError("MPROC_TASK(" + name + "): the name \"" + name +
                       "\" is already registered for another callable (" +
                       describe(it->second->key) + ", now " + describe(key) +
                       "); give each task its own name, e.g. a qualified one");
    }
    if (const TaskEntry* other = find_locked(key)) {
      throw ValueError("MPROC_TASK(" + name + "): this callable is already registered as \"" +
                       other->name + "\"; register each callable once, under one name");
    }
    auto entry = std::make_unique<TaskEntry>(TaskEntry{name, invoke, encode_object, key, batch});
    const TaskEntry& added = *entry;
    if (key.address != 0) {
      by_address_.emplace(key.address, &added);
    } else {
      by_type_.emplace(std::type_index(*key.type), &added);
    }
    by_name_.emplace(std::move(name), std::move(entry));
    return added;
  }

  const TaskEntry* find(std::string_view name) const {
    std::shared_lock lock(mutex_);
    auto it = by_name_.find(name);
    return it == by_name_.end() ? nullptr : it->second.get();
  }

  const TaskEntry* find(const TaskKey& key) const {
    std::shared_lock lock(mutex_);
    return find_locked(key);
  }

  std::vector<std::string> names() const {
    std::shared_lock lock(mutex_);
    std::vector<std::string> names;
    names.reserve(by_name_.size());
    for (const auto& [name, entry] : by_name_) names.push_back(name);
    std::sort(names.begin(), names.end());
    return names;
  }

 private:
  const TaskEntry* find_locked(const TaskKey& key) const {
    if (key.address != 0) {
      auto it = by_address_.find(key.address);
      return it == by_address_.end() ? nullptr : it->second;
    }
    if (key.type == nullptr) return nullptr;
    auto it = by_type_.find(std::type_index(*key.type));
    return it == by_type_.end() ? nullptr : it->second;
  }

  mutable std::shared_mutex mutex_;
  std::unordered_map<std::string, std::unique_ptr<TaskEntry>, StringHash, std::equal_to<>> by_name_;
  std::unordered_map<std::uintptr_t, const TaskEntry*> by_address_;
  std::unordered_map<std::type_index, const TaskEntry*> by_type_;
};

// Never destroyed: static destructors of other translation units, or threads still running at
// exit, may look tasks up.
TaskRegistry& registry() {
  static auto* instance = new TaskRegistry;
  return *instance;
}

// How core (a Process started by spawn or the fork server) reaches the tasks.
const std::string& name_for_core(const TaskKey& key, ObjectEncoder& encode_object) {
  const TaskEntry* entry = registry().find(key);
  if (entry == nullptr) throw_not_registered(key);
  encode_object = entry->encode_object;
  return entry->name;
}

void run_for_core(std::string_view name, std::string_view encoded_args) {
  (void)invoke_task(name, encoded_args);
}

}  // namespace

const TaskEntry& register_task(std::string name, TaskKey key, TaskInvoker invoke,
                               ObjectEncoder encode_object, BatchCodec batch) {
  if (name.empty()) throw ValueError("MPROC_TASK(): a task needs a name");
  if (key.type == nullptr) throw ValueError("MPROC_TASK(" + name + "): no callable given");
  set_task_directory({&name_for_core, &run_for_core});
  return registry().add(std::move(name), key, invoke, encode_object, batch);
}

bool register_task_entry_or_abort(const char* name, TaskKey key, TaskInvoker invoke,
                                  ObjectEncoder encode_object, BatchCodec batch) noexcept {
  try {
    register_task(name, key, invoke, encode_object, batch);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mproc: cannot register a task at start-up: %s\n", e.what());
    std::fflush(stderr);
    std::abort();
  }
  return true;
}

const TaskEntry* find_task(std::string_view name) { return registry().find(name); }

const TaskEntry* find_task(const TaskKey& key) { return registry().find(key); }

void throw_not_registered(const TaskKey& key) {
  constexpr std::string_view kWhere = "; at namespace scope, after its definition";
  if (key.address == 0) {
    std::string type = demangle(key.type->name());
    if (type.find("{lambda(") != std::string::npos) {
      throw NotRegisteredError(
          "a lambda cannot be a task (its type, " + type +
          ", has no name another process could look up): move its body into a named "
          "function or struct with serialize(), and add MPROC_TASK(<that name>)" +
          std::string(kWhere));
    }
    throw NotRegisteredError(type + " is not a registered task: add MPROC_TASK(" + type + ")" +
                             std::string(kWhere));
  }
  std::string name = function_name(key.address);
  if (!name.empty()) {
    throw NotRegisteredError(name + " is not a registered task: add MPROC_TASK(" + name + ")" +
                             std::string(kWhere));
  }
  throw NotRegisteredError("this function (of type " + demangle(key.type->name()) +
                           ") is not a registered task: add MPROC_TASK(<its name>)" +
                           std::string(kWhere));
}

void throw_bad_arguments(const SerializationError& error) {
  throw SerializationError(std::string("cannot decode the task's arguments: ") + error.what());
}

void throw_bad_result(const SerializationError& error) {
  throw SerializationError(std::string("cannot encode the task's result: ") + error.what());
}

}  // namespace detail

bool is_registered(std::string_view name) { return detail::find_task(name) != nullptr; }

std::vector<std::string> registered_tasks() { return detail::registry().names(); }

std::string invoke_task(std::string_view name, std::string_view encoded_args) {
  const detail::TaskEntry* entry = detail::find_task(name);
  if (entry == nullptr) {
    std::string n(name);
    throw NotRegisteredError("no task named \"" + n + "\" is registered in process " +
                             std::to_string(::getpid()) + ": add MPROC_TASK(" + n +
                             "); at namespace scope in the program the workers run");
  }
  return entry->invoke(encoded_args);
}

}  // namespace mproc
