// The manager's server: the object table and the loop that serves client connections.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>

#include "mproc/listener.h"
#include "mproc/manager.h"

#include "futex.h"
#include "unique_fd.h"

namespace mproc::detail {

// One client's thread of a ServerState, as serve_forever() reaches it when it stops.
struct ClientThread {
  int fd = -1;  // the client's socket: shut down at stop, so that a thread reading it returns
  FutexWord* channel = nullptr;  // once on a shared channel: the word its thread sleeps on
  std::thread thread;
  bool finished = false;  // the thread is done with `fd` (it is closed, or about to be)
};

class ServerState : public std::enable_shared_from_this<ServerState> {
 public:
  // Binds the listener (no handshake there: each connection's thread authenticates its client,
  // so a client that stalls mid-handshake holds up only itself).
  ServerState(const Address& address, std::optional<std::string> authkey,
              std::shared_ptr<const TypeRegistry> registry, Serializer serializer);

  [[nodiscard]] const Address& address() const noexcept { return listener_.address(); }

  // Accepts clients, one thread each, until stop(). Returns after closing the listener and
  // disconnecting every client: their threads are joined, so nothing of this server keeps
  // running (but a method call that does not return, such as a get on an empty queue without a
  // timeout: that thread is left to end on its own).
  void serve_forever();
  // Makes serve_forever() return; callable from any thread, idempotent.
  void stop() noexcept;

  // A client's thread that now sleeps on `word` (a shared channel's state) rather than in a
  // read of its socket says so, and says nullptr before the word goes away.
  void set_channel_word(ClientThread& client, FutexWord* word);

  // Runs one request and returns the response; sets `shutdown` for a shutdown request.
  std::string handle(std::string_view request, bool& shutdown);

 private:
  struct Entry {
    std::shared_ptr<Servant> servant;
    std::uint64_t refs = 0;
  };

  // Serves one client on the thread of `client` (a member of clients_).
  void serve_connection(Connection& connection, ClientThread& client);
  // Joins and forgets the threads whose client has left. Under clients_mutex_.
  void join_finished_clients();
  // At the end of serve_forever: shuts every client's socket down (and wakes its shared channel)
  // until their threads have finished, for up to kDisconnectGrace.
  void disconnect_clients();
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
  UniqueFd wake_;             // an eventfd: stop() wakes serve_forever through it
  std::mutex clients_mutex_;  // guards clients_ and their fields
  std::condition_variable client_finished_;
  std::list<ClientThread> clients_;  // a list: each thread holds a reference to its own element
};

}  // namespace mproc::detail
