// A task's exception on its way back: captured in the worker as {kind, type name, message, pid,
// extra}, rethrown in the caller as itself (standard, mproc and MPROC_EXCEPTION types) or as a
// RemoteError.
#include <cxxabi.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <shared_mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <typeindex>
#include <typeinfo>
#include <unordered_map>
#include <variant>

#include "mproc/envelope.h"
#include "mproc/errors.h"

#include "demangle.h"
#include "wire.h"

namespace mproc {
namespace detail {
namespace {

constexpr std::uint8_t kPayloadVersion = 1;

struct ExceptionEntry {
  std::string name;
  ExceptionThrower thrower = nullptr;
  ExceptionExtra extra = nullptr;
};

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};

template <class E>
[[noreturn]] void throw_nested_default(const std::string& /*message*/,
                                       const std::string& /*extra*/) {
  std::throw_with_nested(E());
}

// std::system_error keeps its error code: extra is "<category>:<value>", for the two categories
// every process has. Another category ("") comes back as the RemoteError cause.
std::string system_error_extra(const std::exception& error) {
  const auto& e = dynamic_cast<const std::system_error&>(error);
  const std::error_category& category = e.code().category();
  if (category == std::system_category()) return "system:" + std::to_string(e.code().value());
  if (category == std::generic_category()) return "generic:" + std::to_string(e.code().value());
  return {};
}

[[noreturn]] void throw_system_error(const std::string& message, const std::string& extra) {
  auto colon = extra.find(':');
  int value = 0;
  const char* end = extra.data() + extra.size();
  if (colon == std::string::npos ||
      std::from_chars(extra.data() + colon + 1, end, value).ptr != end) {
    throw;  // the RemoteError being handled
  }
  std::string_view category_name(extra.data(), colon);
  std::error_code code(
      value, category_name == "generic" ? std::generic_category() : std::system_category());
  // what() was "<what_arg>: <code's message>"; give the constructor back just <what_arg>.
  std::string what_arg = message;
  std::string suffix = code.message();
  if (what_arg == suffix) {
    what_arg.clear();
  } else if (what_arg.size() > suffix.size() + 2 &&
             what_arg.compare(what_arg.size() - suffix.size() - 2, std::string::npos,
                              ": " + suffix) == 0) {
    what_arg.resize(what_arg.size() - suffix.size() - 2);
  }
  if (what_arg.empty()) std::throw_with_nested(std::system_error(code));
  std::throw_with_nested(std::system_error(code, what_arg));
}

std::string buffer_too_short_extra(const std::exception& error) {
  return dynamic_cast<const BufferTooShort&>(error).message();
}

[[noreturn]] void throw_buffer_too_short(const std::string& message, const std::string& extra) {
  std::throw_with_nested(BufferTooShort(extra, message));
}

class ExceptionRegistry {
 public:
  ExceptionRegistry() {
    add_with_message<std::runtime_error>("std::runtime_error");
    add_with_message<std::range_error>("std::range_error");
    add_with_message<std::overflow_error>("std::overflow_error");
    add_with_message<std::underflow_error>("std::underflow_error");
    add_with_message<std::logic_error>("std::logic_error");
    add_with_message<std::invalid_argument>("std::invalid_argument");
    add_with_message<std::domain_error>("std::domain_error");
    add_with_message<std::length_error>("std::length_error");
    add_with_message<std::out_of_range>("std::out_of_range");
    add_default<std::exception>("std::exception");
    add_default<std::bad_alloc>("std::bad_alloc");
    add_default<std::bad_cast>("std::bad_cast");
    add_default<std::bad_typeid>("std::bad_typeid");
    add_default<std::bad_optional_access>("std::bad_optional_access");
    add_default<std::bad_variant_access>("std::bad_variant_access");
    add_default<std::bad_function_call>("std::bad_function_call");
    add("std::system_error", typeid(std::system_error),
        nested_type_of(std::system_error(std::error_code())), &throw_system_error,
        &system_error_extra);
    add_with_message<Error>("mproc::Error");
    add_with_message<ValueError>("mproc::ValueError");
    add_with_message<ProcessError>("mproc::ProcessError");
    add_with_message<TimeoutError>("mproc::TimeoutError");
    add_with_message<CancelledError>("mproc::CancelledError");
    add_with_message<Empty>("mproc::Empty");
    add_with_message<Full>("mproc::Full");
    add_with_message<EOFError>("mproc::EOFError");
    add_with_message<AuthenticationError>("mproc::AuthenticationError");
    add_with_message<BrokenBarrierError>("mproc::BrokenBarrierError");
    add_with_message<SerializationError>("mproc::SerializationError");
    add_with_message<NotRegisteredError>("mproc::NotRegisteredError");
    add_with_message<WorkerLostError>("mproc::WorkerLostError");
    add_with_message<ShutDown>("mproc::ShutDown");
    add_with_message<FileExistsError>("mproc::FileExistsError");
    add_with_message<FileNotFoundError>("mproc::FileNotFoundError");
    add_with_message<IndexError>("mproc::IndexError");
    add_with_message<TypeError>("mproc::TypeError");
    add_with_message<KeyError>("mproc::KeyError");
    add_with_message<AttributeError>("mproc::AttributeError");
    add("mproc::BufferTooShort", typeid(BufferTooShort),
        nested_type_of(BufferTooShort(std::string(), std::string())), &throw_buffer_too_short,
        &buffer_too_short_extra);
  }

  void add(std::string name, const std::type_info& type, const std::type_info& nested_type,
           ExceptionThrower thrower, ExceptionExtra extra) {
    std::unique_lock lock(mutex_);
    auto by_name = by_name_.find(name);
    auto by_type = by_type_.find(std::type_index(type));
    if (by_name != by_name_.end() && by_type != by_type_.end() &&
        by_type->second == by_name->second.get()) {
      return;  // the same registration again (a header included twice)
    }
    if (by_name != by_name_.end()) {
      throw ValueError("MPROC_EXCEPTION(" + name + "): the name \"" + name +
                       "\" is already registered for another exception type");
    }
    if (by_type != by_type_.end()) {
      throw ValueError("MPROC_EXCEPTION(" + name + "): this type is already registered as \"" +
                       by_type->second->name + "\"");
    }
    auto entry = std::make_unique<ExceptionEntry>(ExceptionEntry{name, thrower, extra});
    by_type_.emplace(std::type_index(type), entry.get());
    by_type_.emplace(std::type_index(nested_type), entry.get());
    by_name_.emplace(std::move(name), std::move(entry));
  }

  const ExceptionEntry* find(std::string_view name) const {
    std::shared_lock lock(mutex_);
    auto it = by_name_.find(name);
    return it == by_name_.end() ? nullptr : it->second.get();
  }

  const ExceptionEntry* find(const std::type_info& type) const {
    std::shared_lock lock(mutex_);
    auto it = by_type_.find(std::type_index(type));
    return it == by_type_.end() ? nullptr : it->second;
  }

 private:
  template <class E>
  void add_with_message(const char* name) {
    add(name, typeid(E), nested_type_of(E(std::string())), &throw_nested_from_message<E>, nullptr);
  }

  template <class E>
  void add_default(const char* name) {
    add(name, typeid(E), nested_type_of(E()), &throw_nested_default<E>, nullptr);
  }

  mutable std::shared_mutex mutex_;
  std::unordered_map<std::string, std::unique_ptr<ExceptionEntry>, StringHash, std::equal_to<>>
      by_name_;
  // Both E and the type std::throw_with_nested makes of it (what a rethrown E really is), so
  // that an exception that came back from one worker is recognized when it is captured again.
  std::unordered_map<std::type_index, const ExceptionEntry*> by_type_;
};

ExceptionRegistry& exception_registry() {
  static auto* instance = new ExceptionRegistry;  // never destroyed, as the task registry
  return *instance;
}

// "std::_Nested_exception<Foo>" (what std::throw_with_nested throws) is reported as "Foo".
std::string exception_type_name(const std::type_info& type) {
  std::string name = demangle(type.name());
  constexpr std::string_view kNested = "std::_Nested_exception<";
  if (name.size() > kNested.size() + 1 && name.compare(0, kNested.size(), kNested) == 0 &&
      name.back() == '>') {
    return name.substr(kNested.size(), name.size() - kNested.size() - 1);
  }
  return name;
}

std::string encode_exception(const RemoteExceptionInfo& info) {
  std::string out;
  out.reserve(18 + info.type_name.size() + info.message.size() + info.extra.size());
  wire::put_u8(out, kPayloadVersion);
  wire::put_u8(out, static_cast<std::uint8_t>(info.kind));
  wire::put_u32(out, static_cast<std::uint32_t>(info.pid));
  wire::put_string(out, info.type_name, "exception type name");
  wire::put_string(out, info.message, "exception message");
  wire::put_string(out, info.extra, "exception state");
  return out;
}

}  // namespace

void register_exception(std::string name, const std::type_info& type,
                        const std::type_info& nested_type, ExceptionThrower thrower,
                        ExceptionExtra extra) {
  if (name.empty()) throw ValueError("MPROC_EXCEPTION(): an exception type needs a name");
  exception_registry().add(std::move(name), type, nested_type, thrower, extra);
}

bool register_exception_entry_or_abort(const char* name, const std::type_info& type,
                                       const std::type_info& nested_type,
                                       ExceptionThrower thrower) noexcept {
  try {
    register_exception(name, type, nested_type, thrower, nullptr);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mproc: cannot register an exception type at start-up: %s\n", e.what());
    std::fflush(stderr);
    std::abort();
  }
  return true;
}

}  // namespace detail

std::string capture_exception(const std::exception_ptr& error) {
  RemoteExceptionInfo info;
  info.pid = static_cast<int>(::getpid());
  if (!error) {
    info.type_name = "no exception";
    info.message = "an exception was captured where none was being handled";
    return detail::encode_exception(info);
  }
  try {
    std::rethrow_exception(error);
  } catch (const RemoteError& e) {
    // Already remote (a task that ran a task): keep where it came from.
    info.type_name = e.type_name();
    info.message = e.message();
    info.pid = e.pid();
  } catch (const std::exception& e) {
    info.message = e.what();
    // An exception rethrown as itself carries its origin as a nested RemoteError.
    if (const auto* nested = dynamic_cast<const std::nested_exception*>(&e);
        nested != nullptr && nested->nested_ptr()) {
      try {
        std::rethrow_exception(nested->nested_ptr());
      } catch (const RemoteError& cause) {
        info.pid = cause.pid();
      } catch (...) {
      }
    }
    if (const detail::ExceptionEntry* entry = detail::exception_registry().find(typeid(e))) {
      info.kind = ExceptionKind::kRegistered;
      info.type_name = entry->name;
      if (entry->extra != nullptr) info.extra = entry->extra(e);
    } else {
      info.type_name = detail::exception_type_name(typeid(e));
    }
  } catch (const char* text) {
    info.type_name = "const char*";
    info.message = text != nullptr ? text : "";
  } catch (const std::string& text) {
    info.type_name = "std::string";
    info.message = text;
  } catch (...) {
    const std::type_info* type = abi::__cxa_current_exception_type();
    info.type_name = type != nullptr ? detail::demangle(type->name()) : "unknown";
    info.message = "(not a std::exception)";
  }
  return detail::encode_exception(info);
}

std::string capture_current_exception() { return capture_exception(std::current_exception()); }

RemoteExceptionInfo decode_exception(std::string_view payload) {
  detail::wire::Reader in(payload, "exception payload");
  if (in.u8() != detail::kPayloadVersion) in.fail("unknown version");
  RemoteExceptionInfo info;
  std::uint8_t kind = in.u8();
  if (kind != static_cast<std::uint8_t>(ExceptionKind::kRegistered) &&
      kind != static_cast<std::uint8_t>(ExceptionKind::kUnregistered)) {
    in.fail("unknown exception kind");
  }
  info.kind = static_cast<ExceptionKind>(kind);
  info.pid = static_cast<int>(in.u32());
  info.type_name = in.string();
  info.message = in.string();
  info.extra = in.string();
  in.expect_end();
  return info;
}

std::exception_ptr remote_exception(std::string_view payload) noexcept {
  try {
    if (payload.empty()) return std::make_exception_ptr(std::bad_alloc());
    RemoteExceptionInfo info = decode_exception(payload);
    if (info.kind == ExceptionKind::kRegistered) {
      if (const detail::ExceptionEntry* entry = detail::exception_registry().find(info.type_name)) {
        try {
          throw RemoteError(info.type_name, info.message, info.pid);
        } catch (const RemoteError&) {
          try {
            entry->thrower(info.message, info.extra);
          } catch (...) {
            return std::current_exception();
          }
        }
      }
    }
    return std::make_exception_ptr(
        RemoteError(std::move(info.type_name), std::move(info.message), info.pid));
  } catch (...) {
    return std::current_exception();
  }
}

void rethrow_remote(std::string_view payload) { std::rethrow_exception(remote_exception(payload)); }

}  // namespace mproc
