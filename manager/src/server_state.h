// The manager's server: the object table and the loop that serves client connections.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "mproc/listener.h"
#include "mproc/manager.h"

#include "unique_fd.h"

namespace mproc::detail {

class ServerState : public std::enable_shared_from_this<ServerState> {
 public:
  // Binds the listener (no handshake there: each connection's thread authenticates its client,
  // so a client that stalls mid-handshake holds up only itself).
  ServerState(const Address& address, std::optional<std::string> authkey,
              std::shared_ptr<const TypeRegistry> registry, Serializer serializer);

  [[nodiscard]] const Address& address() const noexcept { return listener_.address(); }

  // Accepts clients, one thread each, until stop(). Returns after closing the listener.
  void serve_forever();
  // Makes serve_forever() return; callable from any thread, idempotent.
  void stop() noexcept;

  // Runs one request and returns the response; sets `shutdown` for a shutdown request.
  std::string handle(std::string_view request, bool& shutdown);

 private:
  struct Entry {
    std::shared_ptr<Servant> servant;
    std::uint64_t refs = 0;
  };

  void serve_connection(Connection connection);
  // The answer to a client's hello: kOk when it announced this server's serializer.
  std::string greet(std::string_view request, bool& accepted) const;
  std::string create(std::string_view type_name, std::string_view args);
  std::shared_ptr<Servant> find(std::uint64_t id);
  void incref(std::uint64_t id);
  void decref(std::uint64_t id);

  Listener listener_;
  std::optional<std::string> authkey_;
  std::shared_ptr<const TypeRegistry> registry_;
  Serializer serializer_;
  std::mutex mutex_;  // guards objects_ and next_id_
  std::unordered_map<std::uint64_t, Entry> objects_;
  std::uint64_t next_id_ = 1;
  std::atomic<bool> stopping_{false};
  UniqueFd wake_;  // an eventfd: stop() wakes serve_forever through it
};

}  // namespace mproc::detail
