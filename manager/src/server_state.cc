#include "server_state.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <exception>
#include <thread>
#include <utility>

#include "mproc/envelope.h"
#include "mproc/log.h"

#include "os_error.h"
#include "protocol.h"
#include "shared_channel.h"

namespace mproc::detail {

ServerState::ServerState(const Address& address, std::optional<std::string> authkey,
                         std::shared_ptr<const TypeRegistry> registry, Serializer serializer)
    : listener_(address, std::nullopt, /*backlog=*/64),
      authkey_(std::move(authkey)),
      registry_(std::move(registry)),
      serializer_(serializer),
      wake_(::eventfd(0, EFD_CLOEXEC)) {
  if (!wake_) throw_errno("manager server: eventfd");
}

namespace {

// How long a stopping server waits for its clients' threads: a thread reading its socket or
// sleeping on its shared channel ends within microseconds of the disconnect; only one still
// inside a method call (a blocking get) takes longer, and waiting for that one would hold up a
// manager's shutdown for as long as the call lasts.
constexpr auto kDisconnectGrace = std::chrono::milliseconds(200);
// A wake-up can slip in before the thread sleeps: it is repeated this often.
constexpr auto kDisconnectRetry = std::chrono::milliseconds(5);

}  // namespace

void ServerState::serve_forever() {
  // However the loop ends, no client thread is left joinable (or running, see the header).
  struct Disconnect {
    ServerState& server;
    ~Disconnect() { server.disconnect_clients(); }
  } disconnect{*this};
  while (!stopping_.load(std::memory_order_acquire)) {
    pollfd fds[2] = {{listener_.fileno(), POLLIN, 0}, {wake_.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      throw_errno("manager server: poll");
    }
    if (fds[1].revents != 0) break;
    Connection connection;
    try {
      connection = listener_.accept(Deadline::now());
    } catch (const TimeoutError&) {
      continue;  // the client went away before we took it
    } catch (const std::exception& e) {
      if (stopping_.load(std::memory_order_acquire)) break;
      get_logger()->warn("manager server: accept failed: {}", e.what());
      continue;
    }
    std::scoped_lock lock(clients_mutex_);
    join_finished_clients();
    ClientThread& client = clients_.emplace_back();
    client.fd = connection.fileno();
    // The thread keeps the state alive: it may outlive serve_forever() (see the header).
    client.thread =
        std::thread([self = shared_from_this(), &client, c = std::move(connection)]() mutable {
          self->serve_connection(c, client);
          {
            // Before the descriptor is closed (below), so that a disconnect never shuts down a
            // descriptor number reused by something else.
            std::scoped_lock lock(self->clients_mutex_);
            client.finished = true;
            client.fd = -1;
          }
          self->client_finished_.notify_all();
        });
  }
  listener_.close();
}

void ServerState::stop() noexcept {
  if (stopping_.exchange(true)) return;
  std::uint64_t one = 1;
  // Wakes serve_forever's poll; an eventfd counter cannot overflow from one write.
  [[maybe_unused]] ssize_t n = ::write(wake_.get(), &one, sizeof(one));
}

void ServerState::set_channel_word(ClientThread& client, FutexWord* word) {
  std::scoped_lock lock(clients_mutex_);
  client.channel = word;
}

void ServerState::join_finished_clients() {
  // A finished thread no longer takes clients_mutex_, so joining it here cannot deadlock.
  std::erase_if(clients_, [](ClientThread& client) {
    if (!client.finished) return false;
    if (client.thread.joinable()) client.thread.join();  // not when detached at a stop
    return true;
  });
}

void ServerState::disconnect_clients() {
  std::unique_lock lock(clients_mutex_);
  const auto give_up = Clock::now() + kDisconnectGrace;
  for (;;) {
    join_finished_clients();
    if (clients_.empty()) return;
    if (Clock::now() >= give_up) break;
    for (ClientThread& client : clients_) {
      if (client.fd >= 0) ::shutdown(client.fd, SHUT_RDWR);
      if (client.channel != nullptr) futex_wake(*client.channel, INT_MAX);
    }
    client_finished_.wait_for(lock, kDisconnectRetry);
  }
  get_logger()->info("manager server: {} client call(s) still running at shutdown",
                     clients_.size());
  // Left running, and left in clients_: each still refers to its element (and keeps this state
  // alive), until it ends on its own.
  for (ClientThread& client : clients_) client.thread.detach();
}

void ServerState::serve_connection(Connection& connection, ClientThread& client) {
  // A proxy that arrives inside an argument (stored in a container: a nested proxy) keeps its
  // object alive for as long as the Object holding it exists here.
  set_thread_reference_resolver(
      [weak = weak_from_this()](const Reference& r) -> std::shared_ptr<const void> {
        auto self = weak.lock();
        if (!self || r.address != self->address().to_string()) return nullptr;  // not ours
        self->incref(r.id);
        return std::shared_ptr<const void>(self.get(), [weak, id = r.id](const void*) {
          if (auto s = weak.lock()) s->decref(id);
        });
      });
  try {
    if (authkey_) {
      deliver_challenge(connection, *authkey_);
      answer_challenge(connection, *authkey_);
    }
  } catch (const std::exception& e) {
    get_logger()->info("manager server: client refused: {}", e.what());
    return;
  }
  // Every method and factory this thread runs decodes and encodes in the server's serializer.
  set_current_serializer(serializer_);
  bool greeted = false;  // whether the client announced the same serializer
  try {
    for (;;) {
      std::string request = connection.recv_bytes();
      const char op = request.empty() ? '\0' : request[0];
      if (op == protocol::kHello) {
        connection.send_bytes(greet(request, greeted));
        continue;
      }
      if (!greeted && (op == protocol::kCall || op == protocol::kCreate)) {
        connection.send_bytes(
            std::string(1, protocol::kException) +
            capture_exception(std::make_exception_ptr(SerializationError(
                "manager: a call before the client announced its serializer (protocol error)"))));
        continue;
      }
      if (op == protocol::kSharedChannel) {
        if (greeted) serve_shared_channel(*this, connection, client);
        return;  // a shared channel before the hello: not one of our clients
      }
      bool shutdown = false;
      connection.send_bytes(handle(request, shutdown));
      if (shutdown) {
        stop();
        return;
      }
    }
  } catch (const EOFError&) {
    // The client closed its end (or died): nothing more to serve.
  } catch (const std::exception& e) {
    get_logger()->info("manager server: connection dropped: {}", e.what());
  }
}

std::string ServerState::greet(std::string_view request, bool& accepted) const {
  const std::string_view theirs = request.substr(1);
  const std::string_view ours = serializer_name(serializer_);
  accepted = theirs == ours;
  if (accepted) return std::string(1, protocol::kOk);
  get_logger()->info("manager server: refused a client using the '{}' serializer", theirs);
  return std::string(1, protocol::kException) +
         capture_exception(std::make_exception_ptr(SerializationError(
             "manager at " + address().display() + " uses the '" + std::string(ours) +
             "' serializer but this client uses '" + std::string(theirs) +
             "': both ends must be made with the same ManagerOptions::serializer")));
}

std::string ServerState::handle(std::string_view request, bool& shutdown) {
  std::string out(1, protocol::kOk);
  try {
    if (request.empty()) throw SerializationError("manager: empty request");
    protocol::Reader in(request.substr(1));
    switch (request[0]) {
      case protocol::kCall: {
        std::uint64_t id = in.u64();
        std::string_view method = in.name();
        std::shared_ptr<Servant> servant = find(id);
        out = servant->call(method, in.rest());
        out.insert(out.begin(), protocol::kOk);  // in place: the result is not copied again
        break;
      }
      case protocol::kCreate: {
        std::string_view type_name = in.name();
        out += create(type_name, in.rest());
        break;
      }
      case protocol::kIncref:
        incref(in.u64());
        in.expect_end();
        break;
      case protocol::kDecref:
        decref(in.u64());
        in.expect_end();
        break;
      case protocol::kShutdown:
        in.expect_end();
        shutdown = true;
        break;
      case protocol::kCount: {
        in.expect_end();
        std::lock_guard lock(mutex_);
        protocol::put_u64(out, objects_.size());
        break;
      }
      default:
        throw SerializationError("manager: unknown request kind " +
                                 std::to_string(static_cast<unsigned char>(request[0])));
    }
  } catch (...) {
    out.assign(1, protocol::kException);
    out += capture_current_exception();
  }
  return out;
}

std::string ServerState::create(std::string_view type_name, std::string_view args) {
  const Factory* factory = registry_->find(type_name);
  if (factory == nullptr)
    throw NotRegisteredError("manager: no type registered as '" + std::string(type_name) + "'");
  std::shared_ptr<Servant> servant = (*factory)(args);
  std::lock_guard lock(mutex_);
  std::uint64_t id = next_id_++;
  objects_.emplace(id, Entry{std::move(servant), 1});
  std::string out;
  protocol::put_u64(out, id);
  return out;
}

std::shared_ptr<Servant> ServerState::find(std::uint64_t id) {
  std::lock_guard lock(mutex_);
  auto it = objects_.find(id);
  if (it == objects_.end())
    throw KeyError("manager: no object with id " + std::to_string(id) +
                   " (every proxy to it was released)");
  return it->second.servant;
}

void ServerState::incref(std::uint64_t id) {
  std::lock_guard lock(mutex_);
  auto it = objects_.find(id);
  if (it == objects_.end())
    throw KeyError("manager: no object with id " + std::to_string(id) + " to reference");
  ++it->second.refs;
}

void ServerState::decref(std::uint64_t id) {
  std::shared_ptr<Servant> released;  // destroyed after the lock is let go
  std::lock_guard lock(mutex_);
  auto it = objects_.find(id);
  if (it == objects_.end()) return;  // released already: a decref is best effort
  if (--it->second.refs == 0) {
    released = std::move(it->second.servant);
    objects_.erase(it);
  }
}

}  // namespace mproc::detail
