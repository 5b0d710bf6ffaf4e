// mproc/manager.h
//
// `BaseManager`: a server process that owns objects and hands out proxies to them (proxy.h),
// as Python's `multiprocessing.managers.BaseManager`. `Manager` (sync_manager.h) is the one with
// the standard types (dict, list, Value, Queue, Lock, ...) registered.
//
//   mproc::BaseManager manager;                         // a fresh Unix address, the process's key
//   manager.register_type<Counter>("Counter");          // before start()
//   manager.start();                                    // forks the server
//   auto counter = manager.create<Counter>("Counter");  // mproc::Proxy<Counter>
//
// Remote managers (Python's `BaseManager(address=("", 50000), authkey=b"abc")`):
//
//   // the serving program:
//   mproc::BaseManager m({.address = mproc::TcpAddress{"0.0.0.0", 50000}, .authkey = "abc"});
//   m.register_callable<mproc::managed::Queue>("get_queue", [q] { return q; });
//   m.get_server().serve_forever();                     // or m.start() to serve from a child
//   // a client that knows only the address and the key:
//   mproc::BaseManager c({.address = mproc::TcpAddress{"host", 50000}, .authkey = "abc"});
//   c.connect();
//   auto q = c.create<mproc::QueueProxy<std::string>>("get_queue");
//
// Serializers (Python's `BaseManager(..., serializer='xmlrpclib')`): by default arguments and
// results travel in the binary form of mproc::encode (any serializable type, same build only).
// `.serializer = mproc::Serializer::kText` makes them travel as portable text instead (no build,
// architecture or byte-order dependence), for the types that have an Object form; see
// manager_serializer.h for exactly which types and proxies that covers (an argument it cannot
// carry throws SerializationError before anything is sent). The server and its clients must agree:
//
//   mproc::BaseManager m({.address = mproc::TcpAddress{"0.0.0.0", 50000}, .authkey = "abc",
//                         .serializer = mproc::Serializer::kText});
//
// A client announces its serializer once per connection, after authentication; a server that
// uses another one refuses it with a SerializationError naming both (from `connect()`, or from
// the first call), and keeps serving the others. A proxy remembers its manager's serializer, also
// when passed to another process.
//
// Local clients of a server on a Unix address talk to it through shared memory (a request and
// its response in one mapping, spin-then-futex wake-ups; the socket only carries large messages
// and tells each side when the other is gone); TCP clients use the socket.
//
// The server: one thread per client connection (so a blocking call, `queue.get()`, blocks only
// its caller); objects are kept while some process holds a proxy to them. A server started here
// exits when `shutdown()` is called, when this object is destroyed, or when the process that
// started it dies. A client that dies mid-call or sends garbage gets its connection closed; the
// objects and the other clients are not affected.
//
// Errors: `start()` twice, `create` before `start()`/`connect()` -> ProcessError; a wrong authkey
// -> AuthenticationError (the server stays up); a client whose serializer differs from the
// server's -> SerializationError (the server stays up); registering after start -> ProcessError; an
// unregistered type name -> NotRegisteredError from the server; a server that cannot bind its
// address -> std::system_error from `start()`.
//
// Thread safety: `create` may be called from several threads; `start`/`shutdown`/`connect` not
// concurrently with anything else. Fork safety: a forked child may use the manager's proxies and
// `create`; only the process that started the server shuts it down.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "mproc/listener.h"
#include "mproc/process.h"
#include "mproc/proxy.h"

namespace mproc {

namespace detail {

// How the server makes an object of a registered type from encoded constructor arguments.
using Factory = std::function<std::unique_ptr<Servant>(std::string_view args)>;

// The exposed methods of T: its own `exposed_methods()` (the built-in managed types) or those
// of Proxy<T> (MPROC_PROXY).
template <class T>
std::span<const Method<T>> exposed_methods_of() {
  if constexpr (requires { T::exposed_methods(); }) {
    return T::exposed_methods();
  } else {
    static_assert(ProxyWithMethods<Proxy<T>>,
                  "no MPROC_PROXY(T, methods...) for this type: declare one at global scope");
    return Proxy<T>::exposed_methods();
  }
}

// A string literal becomes a std::string on the wire, so that "abc" reaches a std::string
// parameter; everything else travels as its decayed type.
template <class A>
using wire_arg_t = std::conditional_t<std::is_convertible_v<A, std::string_view> &&
                                          std::is_pointer_v<std::decay_t<A>>,
                                      std::string, std::decay_t<A>>;

template <class T, class F, class... Args>
Factory make_factory(std::string name, F factory) {
  return [name = std::move(name),
          factory = std::move(factory)](std::string_view args) -> std::unique_ptr<Servant> {
    auto tuple = decode_args<std::tuple<Args...>>(args, current_serializer());
    std::shared_ptr<T> object = std::apply(
        [&](auto&... a) -> std::shared_ptr<T> {
          using Made = std::invoke_result_t<const F&, Args...>;
          if constexpr (std::is_convertible_v<Made, std::shared_ptr<T>>) {
            return factory(std::move(a)...);
          } else {
            return std::make_shared<T>(factory(std::move(a)...));
          }
        },
        tuple);
    return std::make_unique<TypedServant<T>>(std::move(object), name, exposed_methods_of<T>());
  };
}

template <class F>
struct CallableArgs : CallableArgs<decltype(&F::operator())> {};
template <class C, class R, class... Ps>
struct CallableArgs<R (C::*)(Ps...) const> {
  using type = std::tuple<std::decay_t<Ps>...>;
};
template <class C, class R, class... Ps>
struct CallableArgs<R (C::*)(Ps...)> {
  using type = std::tuple<std::decay_t<Ps>...>;
};
template <class R, class... Ps>
struct CallableArgs<R (*)(Ps...)> {
  using type = std::tuple<std::decay_t<Ps>...>;
};

// The types a server can make, by name.
class TypeRegistry {
 public:
  void add(std::string name, Factory factory);
  [[nodiscard]] const Factory* find(std::string_view name) const;

 private:
  std::map<std::string, Factory, std::less<>> factories_;
};

class ServerState;
class ManagerProcess;

template <class P>
struct is_proxy : std::is_base_of<BaseProxy, P> {};

}  // namespace detail

// Python's BaseManager(address=..., authkey=..., ...) keyword arguments.
struct ManagerOptions {
  // Where the server listens: a fresh abstract Unix address when unset.
  std::optional<Address> address = std::nullopt;
  // The key clients must prove they know: the process's authkey when unset, as in Python
  // (`current_process().authkey()`, inherited by children); remote clients need an explicit one.
  std::optional<std::string> authkey = std::nullopt;
  // How arguments and results become bytes (Python's serializer='pickle' | 'xmlrpclib'): kBinary,
  // or kText, portable across builds and architectures but only for types with an Object form
  // (manager_serializer.h). The server and every client must choose the same.
  Serializer serializer = Serializer::kBinary;
};

// A server serving in the calling thread (Python's `Server`, from `get_server()`).
class Server {
 public:
  Server(Server&&) noexcept;
  Server& operator=(Server&&) noexcept;
  ~Server();

  // The address it listens on, with the real port when port 0 was asked for.
  [[nodiscard]] const Address& address() const;
  // Serves clients until a client sends shutdown (BaseManager::shutdown from a client, or
  // `stop()` here); then closes the listener, disconnects every client (their next call raises
  // EOFError, or std::system_error when it has to dial again) and returns once their threads
  // have ended. A call still running (a blocking get) is not waited for beyond a moment: it is
  // abandoned, and its thread ends by itself when the call returns.
  void serve_forever();
  // Makes serve_forever return (from another thread or a signal-free context).
  void stop();

 private:
  friend class BaseManager;
  explicit Server(std::shared_ptr<detail::ServerState> state);
  std::shared_ptr<detail::ServerState> state_;
};

class BaseManager {
 public:
  explicit BaseManager(ManagerOptions options = {});
  BaseManager(BaseManager&&) noexcept;
  BaseManager& operator=(BaseManager&&) noexcept;
  BaseManager(const BaseManager&) = delete;
  BaseManager& operator=(const BaseManager&) = delete;
  // Shuts down a server this object started.
  virtual ~BaseManager();

  // ---- registration (before start() / get_server(); Python's classmethod register)

  // `create<T>(name, args...)` makes a T from `CtorArgs...` in the server.
  template <class T, class... CtorArgs>
  void register_type(std::string name) {
    add_type(name,
             detail::make_factory<T, std::function<std::shared_ptr<T>(CtorArgs...)>, CtorArgs...>(
                 name, [](CtorArgs... a) { return std::make_shared<T>(std::move(a)...); }));
  }
  // `create<T>(name, args...)` calls `factory(args...)` in the server; it returns a T, or a
  // std::shared_ptr<T> (return the same one each time to share one object, as Python's
  // `register("get_queue", callable=lambda: queue)` does).
  template <class T, class F>
  void register_callable(std::string name, F factory) {
    register_callable_impl<T>(std::move(name), std::move(factory),
                              static_cast<typename detail::CallableArgs<F>::type*>(nullptr));
  }

  // ---- lifecycle

  // Forks the server process and returns once it listens. Throws ProcessError if started or
  // connected already, std::system_error if the address cannot be bound.
  void start();
  // The same, running `initializer()` once in the server before it serves (Python's
  // `start(initializer, initargs)`).
  void start(std::function<void()> initializer);
  // Uses a server that already runs at `address` (started elsewhere). Connects once to check the
  // key: throws AuthenticationError for a wrong key, std::system_error if nothing listens.
  void connect();
  // A server for this manager's address and types, to run in the calling thread.
  [[nodiscard]] Server get_server();
  // Stops the server this object started and waits for it to exit (SIGTERM, then SIGKILL, if it
  // does not exit within a second). Idempotent. A connected (not started) manager does nothing.
  void shutdown();

  [[nodiscard]] const Address& address() const { return address_; }
  [[nodiscard]] const std::optional<std::string>& authkey() const { return authkey_; }
  [[nodiscard]] Serializer serializer() const noexcept { return serializer_; }
  // Whether start() or connect() succeeded and shutdown() has not been called.
  [[nodiscard]] bool running() const noexcept { return state_ == State::kRunning; }
  // The server process's exit code once shut down (0, or -SIGTERM if it had to be killed);
  // nullopt while running or when this object did not start it.
  [[nodiscard]] std::optional<int> exitcode() const;
  // The server process's pid (0 when this object did not start it).
  [[nodiscard]] int pid() const;

  // Makes an object of the registered type `type_name` in the server and returns its proxy:
  // `create<T>` gives Proxy<T> (MPROC_PROXY), `create<SomeProxy>` gives that proxy type.
  // `args` must have the types registered (string literals become std::string).
  template <class P, class... Args>
  auto create(std::string_view type_name, Args&&... args) {
    using ProxyType = std::conditional_t<detail::is_proxy<P>::value, P, Proxy<P>>;
    std::tuple<detail::wire_arg_t<Args>...> tuple(std::forward<Args>(args)...);
    return ProxyType(create_token(type_name, detail::encode_args(tuple, serializer_)));
  }

  // The number of objects the server holds (for tests and debugging, Python's
  // `_number_of_objects`).
  [[nodiscard]] std::size_t number_of_objects() const;

 protected:
  void add_type(const std::string& name, detail::Factory factory);
  [[nodiscard]] detail::Token create_token(std::string_view type_name, std::string args) const;

 private:
  template <class T, class F, class... Args>
  void register_callable_impl(std::string name, F factory, std::tuple<Args...>* /*tag*/) {
    add_type(name, detail::make_factory<T, F, Args...>(name, std::move(factory)));
  }
  void check_can_register() const;
  void start_impl(std::function<void()> initializer);
  [[nodiscard]] std::size_t number_of_objects_at(const Address& address) const;

  enum class State { kIdle, kRunning, kShutDown };
  Address address_;
  std::optional<std::string> authkey_;
  Serializer serializer_;
  std::shared_ptr<detail::TypeRegistry> registry_;
  std::unique_ptr<detail::ManagerProcess> process_;
  State state_ = State::kIdle;
};

}  // namespace mproc
