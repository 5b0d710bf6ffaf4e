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

// How the submitting side finds a callable's entry: by function address or by type. The address
// is only ever used inside this process, to find the name; what travels is the name.
struct TaskKey {
  const std::type_info* type = nullptr;  // the callable type, or the function pointer's type
  std::uintptr_t address = 0;            // a function's address; 0 for a callable type
};

// Appends a callable object's encoding to `out` (instantiated where the type is registered, so
// submitting an unregistered lambda never needs to serialize it).
using ObjectEncoder = void (*)(const void* object, std::string& out);

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

// ---- signatures -------------------------------------------------------------------------------

template <class... P>
struct ArgsCodec;

template <class Sig>
struct Signature;  // of a function pointer type or a pointer to member operator()

#define MPROC_DETAIL_FN_SIGNATURE(QUALIFIERS)           \
  template <class R, class... P>                        \
  struct Signature<R (*)(P...) QUALIFIERS> {            \
    using Result = R;                                   \
    using Codec = ArgsCodec<P...>;                      \
    using Params = std::tuple<P...>;                    \
    static constexpr std::size_t kArity = sizeof...(P); \
  };
MPROC_DETAIL_FN_SIGNATURE()
MPROC_DETAIL_FN_SIGNATURE(noexcept)
#undef MPROC_DETAIL_FN_SIGNATURE

#define MPROC_DETAIL_MEMBER_SIGNATURE(QUALIFIERS)       \
  template <class C, class R, class... P>               \
  struct Signature<R (C::*)(P...) QUALIFIERS> {         \
    using Result = R;                                   \
    using Codec = ArgsCodec<P...>;                      \
    using Params = std::tuple<P...>;                    \
    static constexpr std::size_t kArity = sizeof...(P); \
  };
MPROC_DETAIL_MEMBER_SIGNATURE()
MPROC_DETAIL_MEMBER_SIGNATURE(const)
MPROC_DETAIL_MEMBER_SIGNATURE(noexcept)
MPROC_DETAIL_MEMBER_SIGNATURE(const noexcept)
MPROC_DETAIL_MEMBER_SIGNATURE(&)
MPROC_DETAIL_MEMBER_SIGNATURE(const&)
MPROC_DETAIL_MEMBER_SIGNATURE(&noexcept)
MPROC_DETAIL_MEMBER_SIGNATURE(const& noexcept)
#undef MPROC_DETAIL_MEMBER_SIGNATURE

template <class T>
concept HasSingleCallOperator = requires {
  &T::operator();
};

// A callable type's signature: its operator()'s, or "no arguments" when operator() is
// overloaded or a template.
template <class T>
struct CallableSignature : Signature<decltype(&T::operator())> {};

template <class T>
requires(!HasSingleCallOperator<T>) struct CallableSignature<T> {
  using Result = std::invoke_result_t<T&>;
  using Codec = ArgsCodec<>;
  static constexpr std::size_t kArity = 0;
};

template <class F>
concept FunctionPointer = std::is_pointer_v<F> && std::is_function_v<std::remove_pointer_t<F>>;

// How a decoded argument is handed to a parameter of type P: an lvalue for a non-const lvalue
// reference, an rvalue (so by-value parameters are moved into) otherwise.
template <class P>
using ArgForward = std::conditional_t<std::is_lvalue_reference_v<P> &&
                                          !std::is_const_v<std::remove_reference_t<P>>,
                                      P, std::decay_t<P>&&>;

// The wire form of an argument list, decided by the callee's parameter types alone (so caller
// and worker agree): nothing for no parameters, the single value for one (which lets trivially
// copyable arguments take serialize.h's memcpy path), a std::tuple for more.
template <class... P>
struct ArgsCodec {
  using Stored = std::tuple<std::decay_t<P>...>;

  template <class... A>
  static void encode(std::string& out, A&&... args) {
    if constexpr (sizeof...(P) != sizeof...(A)) {
      static_assert(sizeof...(P) == sizeof...(A), "mproc: wrong number of arguments for this task");
    } else {
      static_assert((std::is_constructible_v<std::decay_t<P>, A&&> && ...),
                    "mproc: an argument cannot be converted to the task's parameter type");
      if constexpr (sizeof...(P) == 1) {
        encode_one<std::decay_t<P>...>(out, std::forward<A>(args)...);
      } else if constexpr (sizeof...(P) > 1) {
        mproc::encode_into(Stored(std::forward<A>(args)...), out);
      }
    }
  }

  static Stored decode(std::string_view bytes) {
    if constexpr (sizeof...(P) == 0) {
      if (!bytes.empty()) throw SerializationError("arguments given to a task that takes none");
      return {};
    } else if constexpr (sizeof...(P) == 1) {
      return Stored(mproc::decode<std::decay_t<P>...>(bytes));
    } else {
      return mproc::decode<Stored>(bytes);
    }
  }

  template <class Fn>
  static decltype(auto) call(Fn&& fn, Stored& stored) {
    return call_with(std::forward<Fn>(fn), stored, std::index_sequence_for<P...>{});
  }

 private:
  template <class T, class A>
  static void encode_one(std::string& out, A&& arg) {
    if constexpr (std::is_same_v<std::remove_cvref_t<A>, T>) {
      mproc::encode_into(arg, out);
    } else {
      mproc::encode_into(T(std::forward<A>(arg)), out);
    }
  }

  template <class Fn, std::size_t... I>
  static decltype(auto) call_with(Fn&& fn, Stored& stored, std::index_sequence<I...>) {
    return std::forward<Fn>(fn)(static_cast<ArgForward<P>>(std::get<I>(stored))...);
  }
};

// A callable object with arguments travels as [u64 little-endian length][object][arguments].
inline void put_u64(std::string& out, std::uint64_t v) {
  char bytes[8];
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  out.append(bytes, 8);
}

inline void patch_u64(std::string& out, std::size_t at, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

[[nodiscard]] inline std::uint64_t get_u64(std::string_view bytes) {
  if (bytes.size() < 8) throw SerializationError("truncated task object: no length prefix");
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= std::uint64_t{static_cast<unsigned char>(bytes[i])} << (8 * i);
  return v;
}

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

// The local key of what a caller passes as a task.
template <class F>
TaskKey task_key_of(const F& fn) {
  if constexpr (std::is_function_v<F>) {
    return TaskKey{&typeid(F*), reinterpret_cast<std::uintptr_t>(&fn)};
  } else if constexpr (FunctionPointer<F>) {
    if (fn == nullptr) throw NotRegisteredError("a null function pointer is not a task");
    return TaskKey{&typeid(F), reinterpret_cast<std::uintptr_t>(fn)};
  } else {
    static_assert(std::is_class_v<F>, "mproc: a task is a function or a callable object");
    return TaskKey{&typeid(F), 0};
  }
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
  if constexpr (std::is_function_v<F> || FunctionPointer<F>) {
    Signature<std::decay_t<F>>::Codec::encode(out, std::forward<Args>(args)...);
  } else {
    using Sig = CallableSignature<F>;
    if constexpr (Sig::kArity == 0) {
      static_assert(sizeof...(Args) == 0,
                    "mproc: this callable type's operator() takes no arguments (or is "
                    "overloaded, and then must take none)");
      entry.encode_object(&fn, out);
    } else {
      std::size_t at = out.size();
      put_u64(out, 0);
      entry.encode_object(&fn, out);
      patch_u64(out, at, out.size() - at - 8);
      Sig::Codec::encode(out, std::forward<Args>(args)...);
    }
  }
  return entry;
}

}  // namespace detail

// The name `fn` was registered under. Throws NotRegisteredError, saying what to add, if it was
// not registered.
template <class F>
[[nodiscard]] const std::string& task_name(const F& fn) {
  return detail::entry_of(detail::task_key_of(fn)).name;
}

// The result type of calling the task `F` (a function, function pointer or callable type) with
// its parameters; what `take_result<R>` of its result envelope gives back (decayed).
template <class F>
using task_result_t =
    std::decay_t<typename std::conditional_t<std::is_class_v<std::remove_cvref_t<F>>,
                                             detail::CallableSignature<std::remove_cvref_t<F>>,
                                             detail::Signature<std::decay_t<F>>>::Result>;

}  // namespace mproc
