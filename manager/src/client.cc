#include "client.h"

#include <unistd.h>

#include <chrono>
#include <memory>
#include <system_error>
#include <unordered_map>
#include <utility>

#include "mproc/envelope.h"
#include "mproc/listener.h"
#include "mproc/proxy.h"

#include "protocol.h"
#include "shared_channel.h"

namespace mproc::detail {
namespace {

// Throws the server's exception for an exception response.
void check_response(std::string_view response) {
  if (response.empty()) throw SerializationError("manager: empty response");
  if (response[0] == protocol::kException) rethrow_remote(response.substr(1));
  if (response[0] != protocol::kOk) throw SerializationError("manager: malformed response");
}

// One thread's connection to one server.
class ClientConnection {
 public:
  ClientConnection(const std::string& address, const std::optional<std::string>& authkey,
                   Serializer serializer)
      : pid_(::getpid()) {
    Address where(address);
    connection_ = Client(where, authkey);
    connection_.send_bytes(protocol::hello_request(serializer_name(serializer)));
    check_response(connection_.recv_bytes());
    if (where.is_unix()) channel_ = SharedChannelClient::open(connection_);
  }

  [[nodiscard]] int pid() const noexcept { return pid_; }

  // Whether the server hung up while this connection sat idle (it was shut down or restarted);
  // asked only after a pause, so that a loop of calls pays no system call for it.
  [[nodiscard]] bool stale() {
    auto now = std::chrono::steady_clock::now();
    bool idle = now - last_used_ > kIdleBeforeCheck;
    last_used_ = now;
    return idle && peer_hung_up(connection_);
  }

  std::string request(std::string_view message) {
    if (channel_) return channel_->request(connection_, message);
    connection_.send_bytes(message);
    return connection_.recv_bytes();
  }

 private:
  static constexpr auto kIdleBeforeCheck = std::chrono::milliseconds(1);
  int pid_;
  std::chrono::steady_clock::time_point last_used_ = std::chrono::steady_clock::now();
  Connection connection_;
  std::unique_ptr<SharedChannelClient> channel_;
};

struct ConnectionCache {
  std::unordered_map<std::string, std::unique_ptr<ClientConnection>> by_address;
  ~ConnectionCache();
};

// Set once this thread's cache is destroyed (thread exit, or static destruction for the main
// thread): a proxy released after that does not tell the server (the process is ending anyway).
thread_local bool t_cache_gone = false;
thread_local ConnectionCache t_cache;

ConnectionCache::~ConnectionCache() { t_cache_gone = true; }

// The cache key: the same address with another key or serializer is another client (and must
// authenticate and announce itself).
std::string cache_key(const std::string& address, const std::optional<std::string>& authkey,
                      Serializer serializer) {
  std::string key = address;
  key += static_cast<char>(serializer);
  key += authkey ? '\x01' : '\x00';
  if (authkey) key += *authkey;
  return key;
}

ClientConnection& connection_to(const std::string& address,
                                const std::optional<std::string>& authkey, Serializer serializer) {
  auto& slot = t_cache.by_address[cache_key(address, authkey, serializer)];
  // A forked child never uses its parent's connection (or shared channel): the server would
  // see two clients interleave on one stream.
  if (slot && (slot->pid() != ::getpid() || slot->stale())) slot.reset();
  if (!slot) slot = std::make_unique<ClientConnection>(address, authkey, serializer);
  return *slot;
}

}  // namespace

std::string manager_request(const std::string& address, const std::optional<std::string>& authkey,
                            Serializer serializer, std::string_view request) {
  std::string response;
  try {
    response = connection_to(address, authkey, serializer).request(request);
  } catch (const EOFError& e) {
    t_cache.by_address.erase(cache_key(address, authkey, serializer));
    throw EOFError("manager at " + Address(address).display() + " is gone: " + e.what());
  } catch (const std::system_error& e) {
    t_cache.by_address.erase(cache_key(address, authkey, serializer));
    if (e.code() == std::errc::broken_pipe || e.code() == std::errc::connection_reset)
      throw EOFError("manager at " + Address(address).display() + " is gone: " + e.what());
    throw;
  }
  check_response(response);
  response.erase(0, 1);  // in place: no second buffer for the payload
  return response;
}

// ---- proxy.h

std::string begin_call(const Token& token, std::string_view method) {
  return protocol::call_request(token.id, method);
}

std::string finish_call(const Token& token, const std::string& request) {
  return manager_request(token.address, token.authkey, token.serializer, request);
}

std::string call_method(const Token& token, std::string_view method, std::string_view args) {
  std::string request = begin_call(token, method);
  request.append(args);
  return finish_call(token, request);
}

Token create_object(const std::string& address, const std::optional<std::string>& authkey,
                    Serializer serializer, std::string_view type_name, std::string_view args) {
  std::string reply =
      manager_request(address, authkey, serializer, protocol::create_request(type_name, args));
  protocol::Reader in(reply);
  std::uint64_t id = in.u64();
  in.expect_end();
  return Token{std::string(type_name), address, authkey, id, serializer};
}

std::shared_ptr<const ProxyRef> ProxyRef::adopt(Token token) {
  return std::shared_ptr<const ProxyRef>(new ProxyRef(std::move(token), ::getpid()));
}

Token ProxyRef::acquire_token(Token token) {
  (void)manager_request(token.address, token.authkey, token.serializer,
                        protocol::id_request(protocol::kIncref, token.id));
  return token;
}

std::shared_ptr<const ProxyRef> ProxyRef::acquire(Token token) {
  return adopt(acquire_token(std::move(token)));
}

ProxyRef::~ProxyRef() {
  if (owner_pid_ != ::getpid() || t_cache_gone) return;
  try {
    (void)manager_request(token_.address, token_.authkey, token_.serializer,
                          protocol::id_request(protocol::kDecref, token_.id));
  } catch (...) {
    // Best effort: a server that is gone has nothing left to release.
  }
}

[[noreturn]] void throw_not_exposed(std::string_view type_name, std::string_view method) {
  throw AttributeError("'" + std::string(type_name) +
                       "' object (in a manager) exposes no method '" + std::string(method) + "'");
}

}  // namespace mproc::detail

namespace mproc {

const detail::Token& BaseProxy::token() const {
  if (!ref_) throw ValueError("this proxy refers to no managed object (default-constructed)");
  return ref_->token();
}

}  // namespace mproc
