// mproc/proxy.h
//
// Proxies: handles, in any process, to an object that lives in a manager's server process
// (manager.h). A method call on a proxy is one request to the server and one response; the
// server runs the method on the real object and sends back the result or the exception.
//
//   struct Counter {                          // your class, as in Python's BaseManager.register
//     void increment() { std::lock_guard g(m); ++n; }
//     int value() const { std::lock_guard g(m); return n; }
//     mutable std::mutex m; int n = 0;
//   };
//   MPROC_PROXY(Counter, increment, value);   // at global scope: mproc::Proxy<Counter>
//
//   mproc::BaseManager manager;
//   manager.register_type<Counter>("Counter");
//   manager.start();
//   mproc::Proxy<Counter> c = manager.create<Counter>("Counter");
//   c.increment();                            // runs in the server
//   int n = c.value();                        // 1
//
// Python counterpart: `multiprocessing.managers.BaseProxy` and the proxy types that
// `BaseManager.register` makes (`exposed=` is the method list of MPROC_PROXY).
//
// The methods of a `Proxy<T>` have the names of T's methods and take and return the same types
// (arguments are converted to T's parameter types on the calling side, so a call that would not
// compile on T does not compile on the proxy); arguments and results travel through the
// manager's serializer (manager_serializer.h; mproc::encode by default), so they must be
// serializable by it. A listed method must not be
// overloaded or a template (its address must be unique). The server calls methods of one object
// from several connection threads at once, as Python's does: T must be thread-safe.
//
// Passing a proxy to another process: as an argument of a Pool task or a Process target, through
// a Queue or a Pipe (a proxy is serializable: it travels as the server's address, its authkey and
// the object's id, and the receiver connects on its first call). Keep your own proxy alive until
// the receiver has made its copy (Python's rule too): the object lives while some proxy refers to
// it. A forked child may use the proxies it inherited; the parent's copy keeps the object alive.
//
// Errors: an exception thrown by the method in the server is rethrown here as itself when it is a
// standard or registered exception type (MPROC_EXCEPTION, envelope.h), else as RemoteError. A
// method the proxy's type does not expose is an AttributeError. A server that is gone (shut
// down, killed) makes every call throw EOFError, or std::system_error(ECONNREFUSED/ENOENT) when
// no connection to it was open; a call never hangs on a dead server. A default-constructed proxy
// refers to nothing: calls throw ValueError.
//
// Thread safety: a proxy may be used from several threads at once; each thread of each process
// has its own connection to each server. Fork safety: a child never uses the connections of its
// parent (they are per process). Lifetime: the last proxy of an object, in the process that made
// or received it, tells the server to release the object (best effort: a server that is gone is
// not an error).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "mproc/errors.h"
#include "mproc/manager_serializer.h"
#include "mproc/object.h"
#include "mproc/serialize.h"

namespace mproc {

namespace detail {

// What identifies a managed object anywhere: its server and its id there (Python's Token).
struct Token {
  std::string type_name;  // the registered name ("dict", "Counter")
  std::string address;    // Address::to_string() of the server
  std::optional<std::string> authkey;
  std::uint64_t id = 0;
  Serializer serializer = Serializer::kBinary;  // the server's (ManagerOptions::serializer)

  template <class Ar>
  void serialize(Ar& ar, unsigned /*version*/) {
    // The enum travels as a byte (mproc's archive takes no enum inside a class's serialize).
    auto s = static_cast<std::uint8_t>(serializer);
    ar& type_name& address& authkey& id& s;
    if constexpr (Ar::is_loading::value) {
      if (s > static_cast<std::uint8_t>(Serializer::kText))
        throw SerializationError("a proxy's token names an unknown serializer");
      serializer = static_cast<Serializer>(s);
    }
  }
};

// One process's reference to a managed object: made by a create (the server counted it) or by
// receiving a proxy (an incref); the destructor, in that process only, gives it back.
class ProxyRef {
 public:
  // Adopts the reference a create request gave this process.
  static std::shared_ptr<const ProxyRef> adopt(Token token);
  // Takes a new reference (one request) for a token that arrived from another process.
  static std::shared_ptr<const ProxyRef> acquire(Token token);
  // Takes a new reference for `token`, to be adopted later (by a proxy's constructor).
  static Token acquire_token(Token token);
  ~ProxyRef();
  ProxyRef(const ProxyRef&) = delete;
  ProxyRef& operator=(const ProxyRef&) = delete;

  [[nodiscard]] const Token& token() const noexcept { return token_; }

 private:
  ProxyRef(Token token, int owner_pid) : token_(std::move(token)), owner_pid_(owner_pid) {}
  Token token_;
  int owner_pid_;
};

// ---- requests (client side; the wire format is in manager/src/protocol.h)

// One call of `method` on the object, with the encoded argument tuple; returns the encoded result
// or throws the server's exception.
[[nodiscard]] std::string call_method(const Token& token, std::string_view method,
                                      std::string_view args);
// The same in two steps, so that the arguments are encoded straight into the request:
// `begin_call` gives the request without arguments, `finish_call` sends it (arguments appended).
[[nodiscard]] std::string begin_call(const Token& token, std::string_view method);
[[nodiscard]] std::string finish_call(const Token& token, const std::string& request);
// Creates an object of the registered type `type_name` with the encoded constructor arguments;
// returns its token (holding the reference the server counted for us).
[[nodiscard]] Token create_object(const std::string& address,
                                  const std::optional<std::string>& authkey, Serializer serializer,
                                  std::string_view type_name, std::string_view args);

// Argument tuples, in the connection's serializer: an empty tuple is sent as nothing at all.
template <class Tuple>
[[nodiscard]] std::string encode_args(const Tuple& args, Serializer serializer) {
  if constexpr (std::tuple_size_v<Tuple> == 0) {
    return {};
  } else {
    return encode_payload(args, serializer);
  }
}
template <class Tuple>
[[nodiscard]] Tuple decode_args(std::string_view bytes, Serializer serializer) {
  if constexpr (std::tuple_size_v<Tuple> == 0) {
    if (!bytes.empty()) throw SerializationError("a method without arguments received arguments");
    return {};
  } else {
    return decode_payload<Tuple>(bytes, serializer);
  }
}

template <class R>
[[nodiscard]] R decode_reply(std::string_view bytes, Serializer serializer) {
  if constexpr (std::is_void_v<R>) {
    if (!bytes.empty()) throw SerializationError("a void method returned a value");
  } else {
    return decode_payload<R>(bytes, serializer);
  }
}

// A function type R(Ps...) as the wire sees it: the decayed parameters in a tuple.
template <class Sig>
struct Signature;
template <class R, class... Ps>
struct Signature<R(Ps...)> {
  using Result = R;
  using Args = std::tuple<std::decay_t<Ps>...>;
};

// The signature of a member function pointer, cv/ref/noexcept stripped.
template <class M>
struct MemberSignature;
#define MPROC_DETAIL_MEMBER_SIG(QUALS)            \
  template <class C, class R, class... Ps>        \
  struct MemberSignature<R (C::*)(Ps...) QUALS> { \
    using Class = C;                              \
    using Function = R(Ps...);                    \
  };
MPROC_DETAIL_MEMBER_SIG()
MPROC_DETAIL_MEMBER_SIG(const)
MPROC_DETAIL_MEMBER_SIG(noexcept)
MPROC_DETAIL_MEMBER_SIG(const noexcept)
MPROC_DETAIL_MEMBER_SIG(&)
MPROC_DETAIL_MEMBER_SIG(const&)
#undef MPROC_DETAIL_MEMBER_SIG

// ---- the server side of a type: its exposed methods

template <class T>
using MethodFn = std::string (*)(T& self, std::string_view args);

template <class T>
struct Method {
  std::string_view name;
  MethodFn<T> fn;
};

// Decodes the arguments, calls the member on the object, encodes the result (in the serializer
// of the connection being served).
template <auto M>
std::string dispatch(typename MemberSignature<decltype(M)>::Class& self, std::string_view args) {
  using Sig = Signature<typename MemberSignature<decltype(M)>::Function>;
  const Serializer serializer = current_serializer();
  auto tuple = decode_args<typename Sig::Args>(args, serializer);
  if constexpr (std::is_void_v<typename Sig::Result>) {
    std::apply([&](auto&... a) { std::invoke(M, self, std::move(a)...); }, tuple);
    return {};
  } else {
    return encode_payload(
        std::apply([&](auto&... a) { return std::invoke(M, self, std::move(a)...); }, tuple),
        serializer);
  }
}

// A server-side object: anything with exposed methods, called by name.
class Servant {
 public:
  virtual ~Servant() = default;
  // Runs `method`; throws AttributeError for a method that is not exposed, and what it throws.
  virtual std::string call(std::string_view method, std::string_view args) = 0;
};

[[noreturn]] void throw_not_exposed(std::string_view type_name, std::string_view method);

template <class T>
class TypedServant final : public Servant {
 public:
  TypedServant(std::shared_ptr<T> object, std::string_view type_name,
               std::span<const Method<T>> methods)
      : object_(std::move(object)), type_name_(type_name), methods_(methods) {}
  std::string call(std::string_view method, std::string_view args) override {
    for (const Method<T>& m : methods_)
      if (m.name == method) return m.fn(*object_, args);
    throw_not_exposed(type_name_, method);
  }

 private:
  std::shared_ptr<T> object_;
  std::string type_name_;
  std::span<const Method<T>> methods_;
};

// A token for which this process just took a reference, becoming whichever proxy type it is
// converted to (what BaseProxy::from_object returns, so that `o.to<ListProxy<int>>()` works).
struct ReferencedToken {
  Token token;
  template <class P>
  requires std::is_constructible_v<P, Token>
  operator P() const {  // NOLINT: a conversion by design
    return P(token);
  }
};

template <class P>
concept ProxyWithMethods = requires {
  typename P::managed_type;
  {
    P::exposed_methods()
    } -> std::convertible_to<std::span<const Method<typename P::managed_type>>>;
};

}  // namespace detail

// The common part of every proxy: its token, its reference, the call machinery, serialization.
class BaseProxy {
 public:
  BaseProxy() = default;

  // The registered type name, the server's address (Address::to_string), the object's id there.
  [[nodiscard]] const std::string& type_name() const { return token().type_name; }
  [[nodiscard]] const std::string& address() const { return token().address; }
  [[nodiscard]] std::uint64_t id() const { return token().id; }
  // The serializer of the proxy's manager (ManagerOptions::serializer).
  [[nodiscard]] Serializer serializer() const { return token().serializer; }
  [[nodiscard]] bool bound() const noexcept { return ref_ != nullptr; }

  // Two proxies are equal when they refer to the same object.
  friend bool operator==(const BaseProxy& a, const BaseProxy& b) {
    if (!a.bound() || !b.bound()) return a.bound() == b.bound();
    return a.id() == b.id() && a.address() == b.address();
  }

  template <class Ar>
  void serialize(Ar& ar, unsigned /*version*/) {
    if constexpr (Ar::is_saving::value) {
      bool has = bound();
      ar& has;
      if (has) {
        detail::Token t = token();
        ar& t;
      }
    } else {
      bool has = false;
      ar& has;
      if (has) {
        detail::Token t;
        ar& t;
        ref_ = detail::ProxyRef::acquire(std::move(t));
      } else {
        ref_.reset();
      }
    }
  }

  // The proxy as an Object (a Reference), to store in a managed container: Python's nested
  // proxies. The server keeps the object alive while a container holds it.
  [[nodiscard]] Object to_object() const {
    const detail::Token& t = token();
    return Object(Reference{t.type_name, t.address, t.authkey, t.id, nullptr});
  }
  // The proxy for an Object holding a Reference (`o.to<ListProxy<int>>()`): takes a reference of
  // its own (one request). Throws TypeError for an Object that is not a Reference.
  [[nodiscard]] static detail::ReferencedToken from_object(const Object& o) {
    const Reference& r = o.as_reference();
    // A Reference only travels over the binary serializer (it has no text form).
    return {detail::ProxyRef::acquire_token(
        detail::Token{r.type_name, r.address, r.authkey, r.id, Serializer::kBinary})};
  }

  // Low level: calls `method` with an encoded argument tuple; returns the encoded result.
  [[nodiscard]] std::string call_encoded(std::string_view method, std::string_view args) const {
    return detail::call_method(token(), method, args);
  }

 protected:
  explicit BaseProxy(detail::Token token) : ref_(detail::ProxyRef::adopt(std::move(token))) {}

  // Calls `method`, whose server-side signature is `Sig`, converting `args` to its parameters.
  template <class Sig, class... A>
  typename detail::Signature<Sig>::Result call(std::string_view method, A&&... args) const {
    using S = detail::Signature<Sig>;
    const detail::Token& t = token();
    std::string request = detail::begin_call(t, method);
    if constexpr (std::tuple_size_v < typename S::Args >> 0) {
      detail::encode_payload_into(typename S::Args(std::forward<A>(args)...), t.serializer,
                                  request);
    }
    return detail::decode_reply<typename S::Result>(detail::finish_call(t, request), t.serializer);
  }

  // The same for a member function M of the managed class.
  template <auto M, class... A>
  decltype(auto) call_member(std::string_view method, A&&... args) const {
    return call<typename detail::MemberSignature<decltype(M)>::Function>(method,
                                                                         std::forward<A>(args)...);
  }

  [[nodiscard]] const detail::Token& token() const;

 private:
  std::shared_ptr<const detail::ProxyRef> ref_;
};

// The proxy of a class registered with a BaseManager; defined by MPROC_PROXY.
template <class T>
class Proxy;

}  // namespace mproc

// ---- MPROC_PROXY(Type, method...) ------------------------------------------------------------
// Defines mproc::Proxy<Type> with the listed methods (up to 24). Use at global scope, with the
// type's qualified name, followed by a semicolon.
#define MPROC_DETAIL_PARENS ()
#define MPROC_DETAIL_EXPAND(...) \
  MPROC_DETAIL_EXPAND3(MPROC_DETAIL_EXPAND3(MPROC_DETAIL_EXPAND3(__VA_ARGS__)))
#define MPROC_DETAIL_EXPAND3(...) \
  MPROC_DETAIL_EXPAND2(MPROC_DETAIL_EXPAND2(MPROC_DETAIL_EXPAND2(__VA_ARGS__)))
#define MPROC_DETAIL_EXPAND2(...) \
  MPROC_DETAIL_EXPAND1(MPROC_DETAIL_EXPAND1(MPROC_DETAIL_EXPAND1(__VA_ARGS__)))
#define MPROC_DETAIL_EXPAND1(...) __VA_ARGS__
#define MPROC_DETAIL_FOR_EACH(macro, type, ...) \
  __VA_OPT__(MPROC_DETAIL_EXPAND(MPROC_DETAIL_FOR_EACH_STEP(macro, type, __VA_ARGS__)))
#define MPROC_DETAIL_FOR_EACH_STEP(macro, type, first, ...) \
  macro(type, first)                                        \
      __VA_OPT__(MPROC_DETAIL_FOR_EACH_AGAIN MPROC_DETAIL_PARENS(macro, type, __VA_ARGS__))
#define MPROC_DETAIL_FOR_EACH_AGAIN() MPROC_DETAIL_FOR_EACH_STEP

#define MPROC_DETAIL_PROXY_METHOD(type, name)                                        \
  template <class... A>                                                              \
  decltype(auto) name(A&&... args) const {                                           \
    return this->template call_member<&type::name>(#name, std::forward<A>(args)...); \
  }
#define MPROC_DETAIL_PROXY_ENTRY(type, name) \
  ::mproc::detail::Method<type>{#name, &::mproc::detail::dispatch<&type::name>},

#define MPROC_PROXY(type, ...)                                                    \
  template <>                                                                     \
  class mproc::Proxy<type> : public ::mproc::BaseProxy {                          \
   public:                                                                        \
    using managed_type = type;                                                    \
    Proxy() = default;                                                            \
    explicit Proxy(::mproc::detail::Token token) : BaseProxy(std::move(token)) {} \
    static std::span<const ::mproc::detail::Method<type>> exposed_methods() {     \
      static const ::mproc::detail::Method<type> methods[] = {                    \
          MPROC_DETAIL_FOR_EACH(MPROC_DETAIL_PROXY_ENTRY, type, __VA_ARGS__)};    \
      return methods;                                                             \
    }                                                                             \
    MPROC_DETAIL_FOR_EACH(MPROC_DETAIL_PROXY_METHOD, type, __VA_ARGS__)           \
  }
