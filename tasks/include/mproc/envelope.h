// mproc/envelope.h
//
// What a task is on the wire: the call envelope a caller sends to a worker, the result envelope
// the worker sends back, and the capture of a task's exception in the worker for rethrow in the
// caller. Python's Pool sends `(job, i, func, args, kwds)` tuples and gets `(job, i, (ok,
// value))` back, pickling the exception itself; here the callable travels by its registered name
// (see task.h) and an exception as {kind, type name, message, pid}.
//
//   CallEnvelope call = make_call(square, 7);        // in the caller; NotRegisteredError if
//   call.task_id = next_id++;                        // square lacks MPROC_TASK(square);
//   std::string wire = encode_call(call);
//   ... the worker:  ResultEnvelope r = run_call(decode_call_view(wire));  (never throws)
//                    std::string back = encode_result(r);
//   ... the caller:  int v = take_result<int>(decode_result(back));      (49, or rethrows)
//
// Exceptions. A task's exception comes back as itself when its type is one of the standard
// exceptions (std::exception's runtime_error and logic_error families, std::bad_alloc,
// std::system_error with the system or generic category), one of mproc's own (errors.h), or a
// type registered with `MPROC_EXCEPTION(MyError)`; any other type comes back as
// `mproc::RemoteError` holding the type's name, the message and the worker's pid. An exception
// rethrown as itself carries, as its nested exception (`std::rethrow_if_nested`), a RemoteError
// with the worker's pid: the counterpart of Python's `__cause__` RemoteTraceback.
//
//   struct QuotaExceeded : std::runtime_error { using std::runtime_error::runtime_error; };
//   MPROC_EXCEPTION(QuotaExceeded);      // at namespace scope; constructible from a message,
//                                        // whose what() returns that message
//
// Wire format (internal, version 1, little-endian; may change with mproc's version):
//   call:      'C' u64 task_id  u32 name_size name  args...(the rest)
//   result:    'R' u64 task_id  u8 status(0 ok, 1 exception)  payload...(the rest)
//   exception: u8 version(1) u8 kind i32 pid  u32+type_name  u32+message  u32+extra
// Decoding checks every size against the bytes present and throws SerializationError for
// anything else, never reading out of bounds.
//
// Thread safety: all functions may be called from any thread; they keep no state besides the
// exception-type registry (guarded like the task registry). Fork safety: plain functions, no
// locks held across calls. Lifetime: the *View types point into the bytes they were decoded from
// and must not outlive them.
#pragma once

#include <cstdint>
#include <exception>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeinfo>
#include <utility>

#include "mproc/errors.h"
#include "mproc/serialize.h"
#include "mproc/task.h"

// Registers an exception type so that, thrown by a task, it is rethrown in the caller as itself.
// The type must derive from std::exception and be constructible from a std::string message; the
// name is the text between the parentheses. Use at namespace scope, followed by a semicolon.
#define MPROC_EXCEPTION(...)                                                          \
  [[maybe_unused]] static const bool MPROC_DETAIL_CONCAT(mproc_exception_registered_, \
                                                         __COUNTER__) =               \
      ::mproc::detail::register_exception_or_abort<__VA_ARGS__>(#__VA_ARGS__)

namespace mproc {

// A request to run the task `name` with `args` (encoded as task.h's codec does).
struct CallEnvelope {
  std::uint64_t task_id = 0;
  std::string name;
  std::string args;

  // For sending a whole envelope through serialize.h (encode_call is the faster way).
  template <class Ar>
  void serialize(Ar& ar, unsigned /*version*/) {
    ar& task_id& name& args;
  }
};

// A decoded call that points into the bytes it came from (no copies).
struct CallView {
  std::uint64_t task_id = 0;
  std::string_view name;
  std::string_view args;
};

enum class ResultStatus : std::uint8_t { kOk = 0, kException = 1 };

// The outcome of a call: the encoded result (kOk; "" for void) or a captured exception
// (kException; see capture_current_exception).
struct ResultEnvelope {
  std::uint64_t task_id = 0;
  ResultStatus status = ResultStatus::kOk;
  std::string payload;

  template <class Ar>
  void serialize(Ar& ar, unsigned /*version*/) {
    auto status_byte = static_cast<std::uint8_t>(status);
    ar& task_id& status_byte& payload;
    status = static_cast<ResultStatus>(status_byte);
  }
};

struct ResultView {
  std::uint64_t task_id = 0;
  ResultStatus status = ResultStatus::kOk;
  std::string_view payload;
};

[[nodiscard]] inline CallView view_of(const CallEnvelope& call) {
  return {call.task_id, call.name, call.args};
}
[[nodiscard]] inline ResultView view_of(const ResultEnvelope& result) {
  return {result.task_id, result.status, result.payload};
}

// ---- encoding -----------------------------------------------------------------------------------

// Appends the call's encoding to `out` (reusing its capacity).
void encode_call_into(const CallView& call, std::string& out);
[[nodiscard]] std::string encode_call(const CallView& call);
[[nodiscard]] std::string encode_call(const CallEnvelope& call);

// Throw SerializationError for bytes that are not a whole call envelope.
[[nodiscard]] CallView decode_call_view(std::string_view bytes);
[[nodiscard]] CallEnvelope decode_call(std::string_view bytes);

void encode_result_into(const ResultView& result, std::string& out);
[[nodiscard]] std::string encode_result(const ResultView& result);
[[nodiscard]] std::string encode_result(const ResultEnvelope& result);

// Throw SerializationError for bytes that are not a whole result envelope.
[[nodiscard]] ResultView decode_result_view(std::string_view bytes);
[[nodiscard]] ResultEnvelope decode_result(std::string_view bytes);

// ---- exceptions ---------------------------------------------------------------------------------

// How the caller will rethrow a captured exception: as the registered type of that name, or as
// RemoteError.
enum class ExceptionKind : std::uint8_t { kRegistered = 1, kUnregistered = 2 };

// A captured exception, decoded (for logging, or a caller that wants the fields).
struct RemoteExceptionInfo {
  ExceptionKind kind = ExceptionKind::kUnregistered;
  std::string type_name;  // registered name ("std::out_of_range"), else the demangled type
  std::string message;    // what(); for a non-std::exception, the thrown text if it was one
  int pid = 0;            // the process that threw it
  std::string extra;      // type-specific state (an error code, BufferTooShort's message)
};

// The exception being handled (call it in a catch block), as an exception payload. Anything can
// be captured: a std::exception of any type, a thrown string or int. A RemoteError keeps the
// type name and pid it came with, so an exception that went through nested pools names its
// origin. Outside a catch block it captures a "no exception" RemoteError. Throws only
// std::bad_alloc.
[[nodiscard]] std::string capture_current_exception();
[[nodiscard]] std::string capture_exception(const std::exception_ptr& error);

// The exception a payload describes, ready to rethrow (as itself, with a RemoteError nested, or
// as a RemoteError). A corrupt payload gives a SerializationError; an empty payload (what a
// worker sends when it cannot even allocate the capture) gives std::bad_alloc. Never throws.
[[nodiscard]] std::exception_ptr remote_exception(std::string_view payload) noexcept;

// Throws remote_exception(payload).
[[noreturn]] void rethrow_remote(std::string_view payload);

// Throws SerializationError for a payload that is not a whole exception payload.
[[nodiscard]] RemoteExceptionInfo decode_exception(std::string_view payload);

// ---- typed helpers (what the Pool uses)
// ----------------------------------------------------------

// The call of `fn(args...)`, with task_id 0 (the submitter numbers its calls). `fn` is a
// registered function (or pointer to one) or an object of a registered callable type. Arguments
// are converted to the task's parameter types (a wrong count or an inconvertible type does not
// compile). Throws NotRegisteredError, at the call site, if `fn` was never registered, saying
// which line to add.
template <class F, class... Args>
[[nodiscard]] CallEnvelope make_call(const F& fn, Args&&... args) {
  CallEnvelope call;
  call.name = detail::encode_task_call(call.args, fn, std::forward<Args>(args)...).name;
  return call;
}

// Runs a call in this process: finds the task by name, decodes the arguments, calls it and
// encodes its result or captures its exception. Never throws: an unknown name gives a
// NotRegisteredError result naming the task and how to register it, undecodable arguments a
// SerializationError result.
[[nodiscard]] ResultEnvelope run_call(const CallView& call) noexcept;
[[nodiscard]] ResultEnvelope run_call(const CallEnvelope& call) noexcept;

// The value of a result (`R` as task_result_t gives it; `void` for none), or the task's
// exception rethrown (see the Exceptions paragraph above). Throws SerializationError if the
// payload does not decode as `R`.
template <class R>
R take_result(const ResultView& result) {
  static_assert(!std::is_reference_v<R>, "take_result<R>: R is a value type");
  if (result.status != ResultStatus::kOk) rethrow_remote(result.payload);
  if constexpr (std::is_void_v<R>) {
    return;
  } else {
    return mproc::decode<R>(result.payload);
  }
}

template <class R>
R take_result(const ResultEnvelope& result) {
  return take_result<R>(view_of(result));
}

namespace detail {

// Throws `E(message)` with the exception being handled nested in it.
template <class E>
[[noreturn]] void throw_nested_from_message(const std::string& message,
                                            const std::string& /*extra*/) {
  std::throw_with_nested(E(message));
}

using ExceptionThrower = void (*)(const std::string& message, const std::string& extra);
using ExceptionExtra = std::string (*)(const std::exception& error);

// Adds an exception type (and the type std::throw_with_nested makes of it). Throws ValueError if
// the name or the type is already registered differently.
void register_exception(std::string name, const std::type_info& type,
                        const std::type_info& nested_type, ExceptionThrower thrower,
                        ExceptionExtra extra);
bool register_exception_entry_or_abort(const char* name, const std::type_info& type,
                                       const std::type_info& nested_type,
                                       ExceptionThrower thrower) noexcept;

// The dynamic type std::throw_with_nested(E) throws (E itself when E is final).
template <class E>
const std::type_info& nested_type_of(E sample) {
  try {
    std::throw_with_nested(std::move(sample));
  } catch (const std::exception& thrown) {
    return typeid(thrown);
  }
  return typeid(E);
}

template <class E>
bool register_exception_or_abort(const char* name) noexcept {
  static_assert(std::is_base_of_v<std::exception, E>,
                "MPROC_EXCEPTION(E): E must derive from std::exception");
  static_assert(std::is_constructible_v<E, std::string>,
                "MPROC_EXCEPTION(E): E must be constructible from a std::string message");
  const std::type_info* nested = &typeid(E);
  try {
    nested = &nested_type_of<E>(E(std::string()));
  } catch (...) {  // E's constructor threw: register E alone
  }
  return register_exception_entry_or_abort(name, typeid(E), *nested, &throw_nested_from_message<E>);
}

}  // namespace detail

}  // namespace mproc
