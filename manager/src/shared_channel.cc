#include "shared_channel.h"

#include <poll.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <new>

#include "mproc/process.h"

#include "futex.h"
#include "os_error.h"
#include "protocol.h"
#include "server_state.h"
#include "unique_fd.h"

namespace mproc::detail {
namespace {

enum ChannelState : std::uint32_t {
  kIdle = 0,
  kRequest = 1,          // a request is in the buffer
  kRequestOnSocket = 2,  // a request too large for the buffer follows on the socket
  kResponse = 3,
  kResponseOnSocket = 4,
};

// How long a side spins for the other's message before sleeping: a manager client calls in a
// loop and the server answers in microseconds, while a futex wake-up costs tens of them on a
// virtual machine. Only worth it when both sides can run at once.
constexpr auto kSpin = std::chrono::microseconds(50);
// How often a sleeping side checks that its peer still exists.
constexpr auto kServerLivenessCheck = std::chrono::seconds(1);
constexpr auto kClientLivenessCheck = std::chrono::milliseconds(100);

bool worth_spinning() {
  static const bool multi_core = cpu_count() > 1;
  return multi_core;
}

}  // namespace

// How long one side spins before sleeping, adapted to what happened before: it doubles (up to
// kSpin) when a spin catches the answer and halves (down to kMinSpin) when it does not, so that a
// peer that answers in microseconds is never slept on, while a slow or descheduled one (a loaded
// machine, a long method) does not cost a core's worth of spinning per call.
class SpinPolicy {
 public:
  [[nodiscard]] std::chrono::nanoseconds budget() const noexcept { return budget_; }
  void caught() noexcept { budget_ = std::min<std::chrono::nanoseconds>(kSpin, budget_ * 2); }
  void missed() noexcept { budget_ = std::max<std::chrono::nanoseconds>(kMinSpin, budget_ / 2); }

 private:
  static constexpr std::chrono::nanoseconds kMinSpin = std::chrono::microseconds(4);
  std::chrono::nanoseconds budget_ = kSpin;
};

namespace {

// Waits until `state` holds a value accepted by `ready`, spinning first, then sleeping with
// `sleeping` raised; every `check` it asks `gone()`. Returns the value, or kIdle when gone.
template <class Ready, class Gone>
std::uint32_t await_state(FutexWord& state, FutexWord& sleeping, SpinPolicy& spin, Ready ready,
                          Gone gone, std::chrono::nanoseconds check) {
  std::uint32_t v = state.load(std::memory_order_acquire);
  if (ready(v)) return v;
  if (worth_spinning()) {
    auto until = std::chrono::steady_clock::now() + spin.budget();
    do {
      for (int i = 0; i < 64; ++i) {
        v = state.load(std::memory_order_acquire);
        if (ready(v)) {
          spin.caught();
          return v;
        }
        cpu_pause();
      }
    } while (std::chrono::steady_clock::now() < until);
    spin.missed();
  }
  for (;;) {
    sleeping.store(1, std::memory_order_seq_cst);
    v = state.load(std::memory_order_seq_cst);
    if (!ready(v)) futex_wait(state, v, Deadline::after(check));
    sleeping.store(0, std::memory_order_relaxed);
    v = state.load(std::memory_order_acquire);
    if (ready(v)) return v;
    if (gone()) return kIdle;
  }
}

void publish(FutexWord& state, FutexWord& peer_sleeping, std::uint32_t value) {
  state.store(value, std::memory_order_seq_cst);
  if (peer_sleeping.load(std::memory_order_seq_cst) != 0) futex_wake(state, 1);
}

}  // namespace

bool peer_hung_up(const Connection& connection) {
  pollfd p{connection.fileno(), POLLRDHUP, 0};
  int rc = ::poll(&p, 1, 0);
  return rc > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

SharedChannelMapping::SharedChannelMapping(int fd) {
  base_ = ::mmap(nullptr, kBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base_ == MAP_FAILED) {
    base_ = nullptr;
    throw_errno("map the manager's shared channel");
  }
}

SharedChannelMapping::~SharedChannelMapping() {
  if (base_ != nullptr) ::munmap(base_, kBytes);
}

int SharedChannelMapping::create_memfd() {
  UniqueFd fd(::memfd_create("mproc-manager-channel", MFD_CLOEXEC));
  if (fd.get() < 0) throw_errno("memfd_create for the manager's shared channel");
  if (::ftruncate(fd.get(), static_cast<off_t>(kBytes)) != 0)
    throw_errno("size the manager's shared channel");
  return fd.release();
}

SharedChannelClient::SharedChannelClient(int fd)
    : mapping_(fd), spin_(std::make_unique<SpinPolicy>()) {}
SharedChannelClient::~SharedChannelClient() = default;

std::unique_ptr<SharedChannelClient> SharedChannelClient::open(Connection& connection) {
  UniqueFd fd(SharedChannelMapping::create_memfd());
  std::unique_ptr<SharedChannelClient> client(new SharedChannelClient(fd.get()));
  new (&client->mapping_.header()) SharedChannelHeader{};
  connection.send_bytes(std::string_view("H", 1));
  send_handle(connection, fd.get());
  std::string ack = connection.recv_bytes();
  if (ack != std::string_view("K", 1)) return nullptr;
  return client;
}

std::string SharedChannelClient::request(Connection& connection, std::string_view message) {
  SharedChannelHeader& h = mapping_.header();
  if (message.size() <= SharedChannelMapping::kCapacity) {
    std::memcpy(mapping_.buffer(), message.data(), message.size());
    h.size = static_cast<std::uint32_t>(message.size());
    publish(h.state, h.server_sleeping, kRequest);
  } else {
    // Announced first: the server reads the socket only once it knows, and a message larger
    // than the socket's buffer needs a reader before send_bytes can finish.
    publish(h.state, h.server_sleeping, kRequestOnSocket);
    connection.send_bytes(message);
  }
  std::uint32_t got = await_state(
      h.state, h.client_sleeping, *spin_,
      [](std::uint32_t v) { return v == kResponse || v == kResponseOnSocket; },
      [&] { return peer_hung_up(connection); }, kClientLivenessCheck);
  std::string response;
  if (got == kResponse) {
    response.assign(mapping_.buffer(), h.size);
  } else if (got == kResponseOnSocket) {
    response = connection.recv_bytes();
  } else {
    throw EOFError("the manager's server is gone (its connection hung up mid-call)");
  }
  h.state.store(kIdle, std::memory_order_release);
  return response;
}

void serve_shared_channel(ServerState& server, Connection& connection, ClientThread& client) {
  std::unique_ptr<SharedChannelMapping> mapping;
  try {
    UniqueFd fd(recv_handle(connection));
    mapping = std::make_unique<SharedChannelMapping>(fd.get());
  } catch (const Error&) {
    throw;  // EOFError: the client left; anything else: refuse below
  } catch (const std::exception&) {
    connection.send_bytes(std::string_view("E", 1));
    return;
  }
  connection.send_bytes(std::string_view("K", 1));
  SharedChannelHeader& h = mapping->header();
  // From now on this thread sleeps on the channel: a stopping server wakes it there.
  server.set_channel_word(client, &h.state);
  struct Unwatch {
    ServerState& server;
    ClientThread& client;
    ~Unwatch() { server.set_channel_word(client, nullptr); }
  } unwatch{server, client};
  SpinPolicy spin;
  for (;;) {
    std::uint32_t got = await_state(
        h.state, h.server_sleeping, spin,
        [](std::uint32_t v) { return v == kRequest || v == kRequestOnSocket; },
        [&] { return peer_hung_up(connection); }, kServerLivenessCheck);
    std::string request;
    if (got == kRequest) {
      // Copied out first: a client that dies or misbehaves mid-call cannot change what we run.
      std::uint32_t size = h.size;
      if (size > SharedChannelMapping::kCapacity) return;  // garbage: drop the client
      request.assign(mapping->buffer(), size);
    } else if (got == kRequestOnSocket) {
      request = connection.recv_bytes();
    } else {
      return;  // the client is gone
    }
    bool shutdown = false;
    std::string response = server.handle(request, shutdown);
    if (response.size() <= SharedChannelMapping::kCapacity) {
      std::memcpy(mapping->buffer(), response.data(), response.size());
      h.size = static_cast<std::uint32_t>(response.size());
      publish(h.state, h.client_sleeping, kResponse);
    } else {
      publish(h.state, h.client_sleeping, kResponseOnSocket);
      connection.send_bytes(response);
    }
    if (shutdown) {
      server.stop();
      return;
    }
  }
}

}  // namespace mproc::detail
