// mproc/detail/call_codec.h (INTERNAL)
//
// How a call of a task travels: the wire form of its arguments, decided by the callee's parameter
// types alone (so that caller and callee agree), and of a callable object with its arguments.
// Shared by the task registry (mproc/task.h), which runs calls, and by `Process`, which sends its
// target and arguments to a child started by exec or by the fork server. Which names exist is the
// registry's business: core reaches it through `set_task_directory`.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <list>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

#include "mproc/errors.h"
#include "mproc/serialize.h"

namespace mproc::detail {

// How the submitting side finds a callable's entry: by function address or by type. The address
// is only ever used inside this process, to find the name; what travels is the name.
struct TaskKey {
  const std::type_info* type = nullptr;  // the callable type, or the function pointer's type
  std::uintptr_t address = 0;            // a function's address; 0 for a callable type
};

// Appends a callable object's encoding to `out` (instantiated where the type is registered, so
// submitting an unregistered lambda never needs to serialize it).
using ObjectEncoder = void (*)(const void* object, std::string& out);

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
      static_assert(((std::is_same_v<std::decay_t<P>, std::remove_cvref_t<A>> ||
                      std::is_constructible_v<std::decay_t<P>, A&&>)&&...),
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

// Appends the encoded arguments of a call of `fn` (with the object itself first for a callable
// type, written by `encode_object`) to `out`.
template <class F, class... Args>
void encode_call_arguments(std::string& out, const F& fn, ObjectEncoder encode_object,
                           Args&&... args) {
  if constexpr (std::is_function_v<F> || FunctionPointer<F>) {
    (void)fn;
    (void)encode_object;
    Signature<std::decay_t<F>>::Codec::encode(out, std::forward<Args>(args)...);
  } else {
    using Sig = CallableSignature<F>;
    if constexpr (Sig::kArity == 0) {
      static_assert(sizeof...(Args) == 0,
                    "mproc: this callable type's operator() takes no arguments (or is "
                    "overloaded, and then must take none)");
      encode_object(&fn, out);
    } else {
      std::size_t at = out.size();
      put_u64(out, 0);
      encode_object(&fn, out);
      patch_u64(out, at, out.size() - at - 8);
      Sig::Codec::encode(out, std::forward<Args>(args)...);
    }
  }
}

// ---- what a Process can send to a child it does not fork ---------------------------------------

// Whether values of T can be encoded: decided without instantiating the encoder, so that a
// Process whose arguments cannot travel (a lambda, a reference wrapper) still compiles for fork.
template <class T>
struct Sendable : std::bool_constant<memcpy_serializable_v<T> || std::is_arithmetic_v<T> ||
                                     std::is_enum_v<T> || HasSerializeMember<T>> {};
template <>
struct Sendable<std::string> : std::true_type {};
template <>
struct Sendable<Object> : std::true_type {};
template <>
struct Sendable<std::monostate> : std::true_type {};
template <class T, class A>
struct Sendable<std::vector<T, A>> : Sendable<T> {};
template <class T, class A>
struct Sendable<std::list<T, A>> : Sendable<T> {};
template <class T, class A>
struct Sendable<std::deque<T, A>> : Sendable<T> {};
template <class T, std::size_t N>
struct Sendable<std::array<T, N>> : Sendable<T> {};
template <class K, class C, class A>
struct Sendable<std::set<K, C, A>> : Sendable<K> {};
template <class K, class H, class E, class A>
struct Sendable<std::unordered_set<K, H, E, A>> : Sendable<K> {};
template <class K, class V, class C, class A>
struct Sendable<std::map<K, V, C, A>>
    : std::bool_constant<Sendable<K>::value && Sendable<V>::value> {};
template <class K, class V, class H, class E, class A>
struct Sendable<std::unordered_map<K, V, H, E, A>>
    : std::bool_constant<Sendable<K>::value && Sendable<V>::value> {};
template <class T>
struct Sendable<std::optional<T>> : Sendable<T> {};
template <class... Ts>
struct Sendable<std::variant<Ts...>> : std::bool_constant<(Sendable<Ts>::value && ...)> {};
template <class A, class B>
struct Sendable<std::pair<A, B>> : std::bool_constant<Sendable<A>::value && Sendable<B>::value> {};
template <class... Ts>
struct Sendable<std::tuple<Ts...>> : std::bool_constant<(Sendable<Ts>::value && ...)> {};

template <class Params, class... Args>
struct SendableArguments : std::false_type {};
template <class... P, class... Args>
requires(sizeof...(P) == sizeof...(Args)) struct SendableArguments<std::tuple<P...>, Args...>
    // One argument is encoded in place; several are copied into a tuple first (so a move-only
    // argument, a Connection, can only travel alone).
    : std::bool_constant<((Sendable<std::decay_t<P>>::value &&
                           ((sizeof...(P) == 1 && std::is_same_v<std::decay_t<P>, Args>) ||
                            std::is_constructible_v<std::decay_t<P>, const Args&>)) &&
                          ...)> {
};

// Whether a call of `F` with `Args` can be sent by name: F is a function or a serializable
// callable type with one call operator, and the arguments fit its parameters and can travel.
template <class F, class... Args>
constexpr bool sendable_call() {
  if constexpr (FunctionPointer<F>) {
    return SendableArguments<typename Signature<F>::Params, Args...>::value;
  } else if constexpr (std::is_class_v<F> && HasSerializeMember<F> &&
                       std::is_default_constructible_v<F>) {
    if constexpr (HasSingleCallOperator<F>) {
      return SendableArguments<typename CallableSignature<F>::Params, Args...>::value;
    } else {
      return sizeof...(Args) == 0 && std::is_invocable_v<F&>;
    }
  } else {
    return false;
  }
}

// A call as a child started by exec or by the fork server receives it: the task's registered
// name and its encoded arguments.
struct SentCall {
  std::string task;
  std::string arguments;
};

// ---- the registry, as core sees it -------------------------------------------------------------

// What the task registry tells about a callable: its registered name and, for a callable type,
// how to encode the object. `find` throws NotRegisteredError (saying what to add) for a callable
// that was not registered; `run` runs the task `name` on encoded arguments, dropping its result.
struct TaskDirectory {
  const std::string& (*find)(const TaskKey& key, ObjectEncoder& encode_object) = nullptr;
  void (*run)(std::string_view name, std::string_view encoded_args) = nullptr;
};

// Installed by the task registry when it is linked in (its static initializer).
void set_task_directory(TaskDirectory directory) noexcept;
// Throws NotRegisteredError when no task was ever registered in this program.
[[nodiscard]] const TaskDirectory& task_directory();

template <class F, class... Args>
SentCall encode_sent_call(const F& fn, const Args&... args) {
  SentCall call;
  ObjectEncoder encode_object = nullptr;
  call.task = task_directory().find(task_key_of(fn), encode_object);
  encode_call_arguments(call.arguments, fn, encode_object, args...);
  return call;
}

}  // namespace mproc::detail
