// mproc/task.h
//
// Tasks by name: `MPROC_TASK(name)` registers a free function or a callable type once, at
// start-up, under the name as written, so that a worker can run it from a message that carries
// only that name and the serialized arguments. Python pickles a function as its qualified name
// and looks it up again in the worker; this is the same idea, made explicit (as Ray's RAY_REMOTE
// and HPX's HPX_PLAIN_ACTION do). Because only the name travels, a worker started by fork, by
// exec of the same program or, later, on another machine finds the same callable.
//
//   int square(int x) { return x * x; }
//   MPROC_TASK(square);                       // at namespace scope, after the definition
//
//   struct Multiply {                         // a callable type: the object itself is sent
//     int a = 0, b = 0;
//     std::string operator()() const { return fmt::format("{} * {} = {}", a, b, a * b); }
//     template <class Ar> void serialize(Ar& ar, unsigned) { ar & a & b; }
//   };
//   MPROC_TASK(Multiply);
//
// What can be registered:
// - a free function (or static member function) that is not overloaded; its parameters may be
//   taken by value, by const reference, by rvalue reference or by non-const reference (the
//   worker's copy is changed, the caller's is not, as in Python). Each parameter type and the
//   result type must be serializable with mproc/serialize.h; a `void` result is fine.
// - a class type with `serialize(Ar&, unsigned)`, default-constructible, with an `operator()`.
//   If `operator()` is a single non-template member, it may take arguments (sent after the
//   object); an overloaded or template `operator()` must be callable with no arguments.
// Lambdas cannot be tasks (their type has no name that another process could look up): write a
// named function or struct.
//
// Names: the text between the parentheses, verbatim (`MPROC_TASK(geo::area)` is "geo::area";
// templates too: `MPROC_TASK(twice<int>)`). Submitting an unregistered callable throws
// NotRegisteredError at the call site with the line to add (`add MPROC_TASK(geo::volume); at
// namespace scope`); a function's name is found in the program's symbol tables, so in a stripped
// binary the message shows its type and `<its name>` instead.
// Registering the same callable again under the same name (a header included twice) is harmless;
// two different callables under one name, or one callable under two names, is a start-up error:
// the program prints which and aborts before main() runs.
//
// Thread safety: registration and lookups may run concurrently (a shared mutex guards the
// registry; registrations normally all happen before main()). Fork safety: a forked child has
// the parent's registry; under exec the child builds the same registry from the same static
// initializers. Lifetime: entries are never removed; references to them stay valid until exit.
// Note for static libraries: a translation unit that holds only MPROC_TASK lines and nothing the
// program references is dropped by the linker, and its tasks with it; keep the registration next
// to the definition of something used, or link the library with --whole-archive.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "mproc/detail/call_codec.h"
#include "mproc/errors.h"
#include "mproc/serialize.h"

#define MPROC_DETAIL_CONCAT2(a, b) a##b
#define MPROC_DETAIL_CONCAT(a, b) MPROC_DETAIL_CONCAT2(a, b)

// Registers a free function or a callable type as a task named as written. Use at namespace
// scope, followed by a semicolon.
#define MPROC_TASK(...)                                                                         \
  [[maybe_unused]] static const bool MPROC_DETAIL_CONCAT(mproc_task_registered_, __COUNTER__) = \
      ::mproc::detail::register_task_or_abort<__VA_ARGS__>(#__VA_ARGS__)

namespace mproc {

// Runs a registered task in this process: decodes `encoded_args`, calls, and returns the
// encoded result ("" for `void`). Throws SerializationError for arguments that do not decode,
// and whatever the task throws.
using TaskInvoker = std::string (*)(std::string_view encoded_args);

// Whether a task of this name is registered in this process.
[[nodiscard]] bool is_registered(std::string_view name);

// The names of all registered tasks, sorted.
[[nodiscard]] std::vector<std::string> registered_tasks();

// Runs the task registered as `name` in this process (what a worker does with a call).
// Throws NotRegisteredError for an unknown name, SerializationError for bad arguments, and what
// the task throws.
std::string invoke_task(std::string_view name, std::string_view encoded_args);

namespace detail {

// The batch form of a function task whose one parameter and result both travel as their raw
// bytes (memcpy_serializable, default-constructible): `count` calls, arguments packed back to
// back in `args` (arg_size bytes each), results written back to back into `results`. `done`
// counts the calls finished: when the task throws, the exception propagates with `done` at the
// call that threw, and the caller goes on after it. This is what lets Pool::map of a tiny
// function cost a few nanoseconds per item instead of a name lookup and a few strings each.
using BatchInvoker = void (*)(const char* args, char* results, std::uint32_t count,
                              std::uint32_t& done);

struct BatchCodec {
  BatchInvoker invoke = nullptr;  // null: the task has no batch form
  std::uint32_t arg_size = 0;
  std::uint32_t result_size = 0;
};

struct TaskEntry {
  std::string name;
  TaskInvoker invoke = nullptr;
  ObjectEncoder encode_object = nullptr;  // callable types only
  TaskKey key;
  BatchCodec batch{};
};

// Adds an entry. Re-registering the same callable under the same name returns the existing one;
// a name taken by another callable, or a callable already registered under another name, throws
// ValueError saying which.
const TaskEntry& register_task(std::string name, TaskKey key, TaskInvoker invoke,
                               ObjectEncoder encode_object, BatchCodec batch = {});

// register_task for static initializers: on a conflict it prints the reason to stderr and
// aborts, since an exception cannot be caught before main() anyway.
bool register_task_entry_or_abort(const char* name, TaskKey key, TaskInvoker invoke,
                                  ObjectEncoder encode_object, BatchCodec batch = {}) noexcept;

[[nodiscard]] const TaskEntry* find_task(std::string_view name);
[[nodiscard]] const TaskEntry* find_task(const TaskKey& key);

// Throws NotRegisteredError with the line to add (`add MPROC_TASK(square); at namespace scope`).
[[noreturn]] void throw_not_registered(const TaskKey& key);

[[noreturn]] void throw_bad_arguments(const SerializationError& error);
[[noreturn]] void throw_bad_result(const SerializationError& error);

template <class R>
std::string encode_result(R&& result) {
  try {
    return mproc::encode(result);
  } catch (const SerializationError& e) {
    throw_bad_result(e);
  }
}

template <auto F>
std::string invoke_function(std::string_view encoded_args) {
  using Sig = Signature<decltype(F)>;
  typename Sig::Codec::Stored stored;
  try {
    stored = Sig::Codec::decode(encoded_args);
  } catch (const SerializationError& e) {
    throw_bad_arguments(e);
  }
  if constexpr (std::is_void_v<typename Sig::Result>) {
    Sig::Codec::call(F, stored);
    return {};
  } else {
    return encode_result(Sig::Codec::call(F, stored));
  }
}

template <class T>
std::string invoke_object(std::string_view bytes) {
  using Sig = CallableSignature<T>;
  T object{};
  typename Sig::Codec::Stored stored;
  try {
    if constexpr (Sig::kArity == 0) {
      object = mproc::decode<T>(bytes);
    } else {
      std::uint64_t size = get_u64(bytes);
      if (size > bytes.size() - 8) throw SerializationError("truncated task object");
      object = mproc::decode<T>(bytes.substr(8, size));
      stored = Sig::Codec::decode(bytes.substr(8 + size));
    }
  } catch (const SerializationError& e) {
    throw_bad_arguments(e);
  }
  if constexpr (std::is_void_v<typename Sig::Result>) {
    Sig::Codec::call(object, stored);
    return {};
  } else {
    return encode_result(Sig::Codec::call(object, stored));
  }
}

template <class T>
void encode_object(const void* object, std::string& out) {
  mproc::encode_into(*static_cast<const T*>(object), out);
}

// Whether a value travels in a batch as its raw bytes.
template <class T>
inline constexpr bool kBatchable =
    memcpy_serializable_v<T>&& std::is_trivially_copyable_v<T>&& std::is_default_constructible_v<T>;

// Whether the function type `Fn` (a pointer) has a batch form: one parameter and a result, both
// batchable.
template <class Fn>
constexpr bool has_batch_form() {
  using Sig = Signature<Fn>;
  if constexpr (Sig::kArity != 1 || std::is_void_v<typename Sig::Result>) {
    return false;
  } else {
    return kBatchable<std::decay_t<std::tuple_element_t<0, typename Sig::Params>>> &&
           kBatchable<std::decay_t<typename Sig::Result>>;
  }
}

template <class Fn>
using BatchArg = std::decay_t<std::tuple_element_t<0, typename Signature<Fn>::Params>>;
template <class Fn>
using BatchResult = std::decay_t<typename Signature<Fn>::Result>;

template <auto F>
void invoke_batch(const char* args, char* results, std::uint32_t count, std::uint32_t& done) {
  using Fn = decltype(F);
  using P = BatchArg<Fn>;
  using Param = std::tuple_element_t<0, typename Signature<Fn>::Params>;
  using R = BatchResult<Fn>;
  for (done = 0; done < count; ++done) {
    P arg;
    std::memcpy(&arg, args + std::size_t{done} * sizeof(P), sizeof(P));
    R result = F(static_cast<ArgForward<Param>>(arg));
    std::memcpy(results + std::size_t{done} * sizeof(R), &result, sizeof(R));
  }
}

template <auto F>
constexpr BatchCodec batch_codec_of() {
  if constexpr (has_batch_form<decltype(F)>()) {
    return BatchCodec{&invoke_batch<F>, sizeof(BatchArg<decltype(F)>),
                      sizeof(BatchResult<decltype(F)>)};
  } else {
    return BatchCodec{};
  }
}

// The two forms MPROC_TASK expands to: a function (a value) or a callable type.
template <auto F>
bool register_task_or_abort(const char* name) noexcept {
  static_assert(FunctionPointer<decltype(F)>,
                "MPROC_TASK(name): name must be a free function or a callable type");
  return register_task_entry_or_abort(
      name, TaskKey{&typeid(decltype(F)), reinterpret_cast<std::uintptr_t>(F)}, &invoke_function<F>,
      nullptr, batch_codec_of<F>());
}

template <class T>
bool register_task_or_abort(const char* name) noexcept {
  static_assert(std::is_class_v<T>, "MPROC_TASK(name): name must be a function or a class type");
  static_assert(std::is_default_constructible_v<T>,
                "MPROC_TASK(Type): a callable type must be default-constructible");
  return register_task_entry_or_abort(name, TaskKey{&typeid(T), 0}, &invoke_object<T>,
                                      &encode_object<T>);
}

[[nodiscard]] inline const TaskEntry& entry_of(const TaskKey& key) {
  const TaskEntry* entry = find_task(key);
  if (entry == nullptr) throw_not_registered(key);
  return *entry;
}

// Appends the encoded arguments of a call of `fn` to `out` and returns fn's entry. Throws
// NotRegisteredError (nothing appended) if `fn` was not registered.
template <class F, class... Args>
const TaskEntry& encode_task_call(std::string& out, const F& fn, Args&&... args) {
  const TaskEntry& entry = entry_of(task_key_of(fn));
  encode_call_arguments(out, fn, entry.encode_object, std::forward<Args>(args)...);
  return entry;
}

}  // namespace detail

// The name `fn` was registered under. Throws NotRegisteredError, saying what to add, if it was
// not registered.
template <class F>
[[nodiscard]] const std::string& task_name(const F& fn) {
  return detail::entry_of(detail::task_key_of(fn)).name;
}

// A call of a registered task with its arguments, bound now and run later, possibly in another
// process: what a Pool's initializer must be under the spawn and forkserver start methods (a
// plain std::function cannot travel).
//
//   mproc::Pool pool({.initializer = mproc::task_call(set_up, "db.sqlite", 4)});
//
// Calling it runs the task here (invoke_task). Serializable.
class TaskCall {
 public:
  TaskCall() = default;
  TaskCall(std::string name, std::string arguments)
      : name_(std::move(name)), arguments_(std::move(arguments)) {}

  void operator()() const { (void)invoke_task(name_, arguments_); }
  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  [[nodiscard]] const std::string& arguments() const noexcept { return arguments_; }

  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar& name_& arguments_;
  }

 private:
  std::string name_;
  std::string arguments_;
};

// Binds `fn` (a registered task) to `args`, encoded now. Throws NotRegisteredError for an
// unregistered callable, SerializationError for an argument that cannot be encoded.
template <class F, class... Args>
[[nodiscard]] TaskCall task_call(const F& fn, Args&&... args) {
  std::string arguments;
  const detail::TaskEntry& entry =
      detail::encode_task_call(arguments, fn, std::forward<Args>(args)...);
  return TaskCall(entry.name, std::move(arguments));
}

// The result type of calling the task `F` (a function, function pointer or callable type) with
// its parameters; what `take_result<R>` of its result envelope gives back (decayed).
template <class F>
using task_result_t =
    std::decay_t<typename std::conditional_t<std::is_class_v<std::remove_cvref_t<F>>,
                                             detail::CallableSignature<std::remove_cvref_t<F>>,
                                             detail::Signature<std::decay_t<F>>>::Result>;

}  // namespace mproc
