// The fast path between a local client and the manager's server: one request and its response
// in a shared mapping (a memfd the client makes and hands over with SCM_RIGHTS, so there is no
// name to clean up), with spin-then-futex wake-ups. The Unix socket stays open beside it: it
// carries the messages too large for the mapping, and each side learns from it (hang-up) that the
// other is gone.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "mproc/connection.h"

#include "futex.h"

namespace mproc::detail {

class ServerState;
class SpinPolicy;
struct ClientThread;

// Whether the socket's peer hung up (a dead process's sockets are closed by the kernel). One
// poll(2) that does not wait.
[[nodiscard]] bool peer_hung_up(const Connection& connection);

// The mapping: a header, then the message buffer.
struct SharedChannelHeader {
  FutexWord state;            // ChannelState
  FutexWord server_sleeping;  // 1 while the server may be in futex_wait (the client must wake it)
  FutexWord client_sleeping;  // the same for the client
  std::uint32_t size;         // bytes of the message in the buffer
};

class SharedChannelMapping {
 public:
  static constexpr std::size_t kCapacity = 64 * 1024;
  static constexpr std::size_t kBytes = sizeof(SharedChannelHeader) + kCapacity;

  // Maps `fd` (made by create_memfd) read-write, shared.
  explicit SharedChannelMapping(int fd);
  ~SharedChannelMapping();
  SharedChannelMapping(const SharedChannelMapping&) = delete;
  SharedChannelMapping& operator=(const SharedChannelMapping&) = delete;

  // A new anonymous memory file of kBytes (the caller owns the descriptor).
  [[nodiscard]] static int create_memfd();

  [[nodiscard]] SharedChannelHeader& header() const noexcept {
    return *static_cast<SharedChannelHeader*>(base_);
  }
  [[nodiscard]] char* buffer() const noexcept {
    return static_cast<char*>(base_) + sizeof(SharedChannelHeader);
  }

 private:
  void* base_ = nullptr;
};

// The client's end; one per connection.
class SharedChannelClient {
 public:
  // Asks the server, on an authenticated `connection`, to serve it through a shared mapping.
  // Returns nullptr when the server cannot (the socket then stays the channel).
  [[nodiscard]] static std::unique_ptr<SharedChannelClient> open(Connection& connection);

  // Sends a request and returns the response. Throws EOFError when the server is gone.
  [[nodiscard]] std::string request(Connection& connection, std::string_view message);
  ~SharedChannelClient();

 private:
  explicit SharedChannelClient(int fd);
  SharedChannelMapping mapping_;
  std::unique_ptr<SpinPolicy> spin_;
};

// The server's end: serves `connection`'s requests through the mapping whose descriptor follows
// on the socket, until the client is gone, asks for shutdown, or the server disconnects it.
void serve_shared_channel(ServerState& server, Connection& connection, ClientThread& client);

}  // namespace mproc::detail
