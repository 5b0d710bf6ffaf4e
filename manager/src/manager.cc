#include "mproc/manager.h"

#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>
#include <utility>

#include "mproc/envelope.h"
#include "mproc/log.h"

#include "client.h"
#include "managed_pool_registry.h"
#include "protocol.h"
#include "server_state.h"
#include "unique_fd.h"

namespace mproc {
namespace detail {

void TypeRegistry::add(std::string name, Factory factory) {
  factories_.insert_or_assign(std::move(name), std::move(factory));
}

const Factory* TypeRegistry::find(std::string_view name) const {
  auto it = factories_.find(name);
  return it == factories_.end() ? nullptr : &it->second;
}

namespace {

constexpr auto kStartTimeout = std::chrono::seconds(30);
constexpr auto kShutdownGrace = std::chrono::seconds(1);

// An abstract Unix address: nothing on disk to remove, even after a SIGKILL.
Address fresh_address() {
  static std::atomic<unsigned> counter{0};
  // The clock tells apart two processes of the same pid in different pid namespaces that share
  // a network namespace (and so the abstract socket names).
  auto salt = static_cast<std::uint64_t>(Clock::now().time_since_epoch().count());
  return Address(std::string(1, '\0') + "mproc-manager-" + std::to_string(::getpid()) + "-" +
                 std::to_string(counter++) + "-" + std::to_string(salt));
}

// Ends the server when the process that started it is gone (a pidfd becomes readable when its
// process exits), so that a killed parent never leaves a server behind.
void watch_parent(const std::shared_ptr<ServerState>& state, pid_t parent) {
  int fd = static_cast<int>(::syscall(SYS_pidfd_open, parent, 0));
  if (fd < 0 || ::getppid() != parent) {  // already gone (we were re-parented)
    if (fd >= 0) ::close(fd);
    state->stop();
    return;
  }
  std::thread([state, fd] {
    UniqueFd owned(fd);
    pollfd p{owned.get(), POLLIN, 0};
    while (::poll(&p, 1, -1) < 0 && errno == EINTR) {
    }
    state->stop();
  }).detach();
}

}  // namespace

// The server process a BaseManager started.
class ManagerProcess {
 public:
  ManagerProcess(const Address& address, const std::optional<std::string>& authkey,
                 std::shared_ptr<const TypeRegistry> registry, Serializer serializer,
                 std::function<void()> initializer)
      : address_(address), authkey_(authkey) {
    auto [reader, writer] = Pipe(/*duplex=*/false);
    auto ready = std::make_shared<Connection>(std::move(writer));
    pid_t parent = ::getpid();
    // Always forked, whatever the default start method: the server needs the types registered on
    // this BaseManager at run time, which only a copy of this process has.
    process_ = Process(
        ProcessOptions{
            .name = "SyncManager-server", .daemon = false, .start_method = StartMethod::fork},
        [address, authkey, registry, serializer, initializer, ready, parent] {
          std::shared_ptr<ServerState> state;
          try {
            if (initializer) initializer();
            state = std::make_shared<ServerState>(address, authkey, registry, serializer);
          } catch (...) {
            ready->send_bytes("E" + capture_current_exception());
            return;
          }
          ready->send_bytes("K" + state->address().to_string());
          ready->close();
          watch_parent(state, parent);
          state->serve_forever();
          // Pools still held (by a client, or a call blocked in one) must not
          // outlive the server: their workers would be orphans.
          shut_down_managed_pools();
        });
    process_.start();
    ready->close();
    std::string answer;
    try {
      answer = reader.recv_bytes(Deadline::after(kStartTimeout));
    } catch (const EOFError&) {
      process_.join(kShutdownGrace);
      throw ProcessError("the manager's server process exited during start-up");
    } catch (const TimeoutError&) {
      stop_process();
      throw ProcessError("the manager's server process did not start within 30 s");
    }
    if (answer.empty()) throw ProcessError("the manager's server sent an empty start-up answer");
    if (answer[0] == 'E') {
      process_.join(kShutdownGrace);
      rethrow_remote(std::string_view(answer).substr(1));
    }
    address_ = Address(std::string_view(answer).substr(1));
    register_live(this);
  }

  ~ManagerProcess() { shutdown(); }
  ManagerProcess(const ManagerProcess&) = delete;
  ManagerProcess& operator=(const ManagerProcess&) = delete;

  [[nodiscard]] const Address& address() const { return address_; }
  [[nodiscard]] std::optional<int> exitcode() const { return process_.exitcode(); }
  [[nodiscard]] int pid() const { return process_.pid(); }

  // Asks the server to stop, then waits; a server that does not stop in time is terminated.
  void shutdown() noexcept {
    if (done_) return;
    done_ = true;
    unregister_live(this);
    if (owner_pid_ != ::getpid()) return;  // a forked child's copy: not ours to stop
    try {
      if (process_.is_alive()) {
        Connection c = Client(address_, authkey_);
        c.send_bytes(std::string(1, protocol::kShutdown));
        (void)c.recv_bytes(Deadline::after(kShutdownGrace));
      }
    } catch (const std::exception& e) {
      get_logger()->debug("manager shutdown request failed: {}", e.what());
    }
    try {
      if (!process_.join(kShutdownGrace)) stop_process();
    } catch (const std::exception& e) {
      get_logger()->warn("manager shutdown: {}", e.what());
    }
  }

  // Managers still running at exit are shut down before the exit handlers join children (a
  // manager that was never destroyed would otherwise be waited for for ever).
  static void shutdown_all_at_exit() {
    std::set<ManagerProcess*> live;
    {
      std::lock_guard lock(live_mutex());
      live.swap(live_set());
    }
    for (ManagerProcess* m : live) m->shutdown();
  }

 private:
  void stop_process() noexcept {
    try {
      process_.terminate();
      if (!process_.join(kShutdownGrace)) {
        process_.kill();
        process_.join();
      }
    } catch (const std::exception& e) {
      get_logger()->warn("manager shutdown: {}", e.what());
    }
  }

  static std::mutex& live_mutex() {
    static std::mutex m;
    return m;
  }
  static std::set<ManagerProcess*>& live_set() {
    static std::set<ManagerProcess*> s;
    return s;
  }
  static void register_live(ManagerProcess* m) {
    static const bool registered = [] { return std::atexit(shutdown_all_at_exit) == 0; }();
    (void)registered;
    std::lock_guard lock(live_mutex());
    live_set().insert(m);
  }
  static void unregister_live(ManagerProcess* m) noexcept {
    std::lock_guard lock(live_mutex());
    live_set().erase(m);
  }

  Process process_;
  Address address_;
  std::optional<std::string> authkey_;
  pid_t owner_pid_ = ::getpid();
  bool done_ = false;
};

}  // namespace detail

// ---- Server

Server::Server(std::shared_ptr<detail::ServerState> state) : state_(std::move(state)) {}
Server::Server(Server&&) noexcept = default;
Server& Server::operator=(Server&&) noexcept = default;
Server::~Server() = default;
const Address& Server::address() const { return state_->address(); }
void Server::serve_forever() { state_->serve_forever(); }
void Server::stop() { state_->stop(); }

// ---- BaseManager

BaseManager::BaseManager(ManagerOptions options)
    : address_(options.address ? *options.address : detail::fresh_address()),
      authkey_(options.authkey ? std::move(options.authkey) : current_process().authkey()),
      serializer_(options.serializer),
      registry_(std::make_shared<detail::TypeRegistry>()) {}

BaseManager::BaseManager(BaseManager&&) noexcept = default;
BaseManager& BaseManager::operator=(BaseManager&& other) noexcept {
  if (this != &other) {
    shutdown();
    address_ = std::move(other.address_);
    authkey_ = std::move(other.authkey_);
    serializer_ = other.serializer_;
    registry_ = std::move(other.registry_);
    process_ = std::move(other.process_);
    state_ = std::exchange(other.state_, State::kIdle);
  }
  return *this;
}

BaseManager::~BaseManager() { shutdown(); }

void BaseManager::check_can_register() const {
  if (state_ != State::kIdle) throw ProcessError("register types before start() or connect()");
}

void BaseManager::add_type(const std::string& name, detail::Factory factory) {
  check_can_register();
  registry_->add(name, std::move(factory));
}

void BaseManager::start() { start_impl(nullptr); }

void BaseManager::start(std::function<void()> initializer) {
  if (!initializer) throw TypeError("BaseManager::start: the initializer is empty (not callable)");
  start_impl(std::move(initializer));
}

void BaseManager::start_impl(std::function<void()> initializer) {
  if (state_ == State::kRunning) throw ProcessError("the manager has already been started");
  if (state_ == State::kShutDown) throw ProcessError("the manager has been shut down");
  process_ = std::make_unique<detail::ManagerProcess>(address_, authkey_, registry_, serializer_,
                                                      std::move(initializer));
  address_ = process_->address();
  state_ = State::kRunning;
}

void BaseManager::connect() {
  if (state_ == State::kRunning) throw ProcessError("the manager is already running");
  (void)number_of_objects_at(address_);
  state_ = State::kRunning;
}

Server BaseManager::get_server() {
  if (state_ != State::kIdle) throw ProcessError("get_server(): the manager is already running");
  return Server(std::make_shared<detail::ServerState>(address_, authkey_, registry_, serializer_));
}

void BaseManager::shutdown() {
  if (process_) {
    process_->shutdown();
    state_ = State::kShutDown;
  } else if (state_ == State::kRunning) {
    state_ = State::kShutDown;  // connected only: the server is someone else's
  }
}

std::optional<int> BaseManager::exitcode() const {
  return process_ ? process_->exitcode() : std::nullopt;
}

int BaseManager::pid() const { return process_ ? process_->pid() : 0; }

std::size_t BaseManager::number_of_objects() const {
  if (state_ != State::kRunning) throw ProcessError("the manager is not running");
  return number_of_objects_at(address_);
}

std::size_t BaseManager::number_of_objects_at(const Address& address) const {
  std::string reply = detail::manager_request(address.to_string(), authkey_, serializer_,
                                              std::string(1, detail::protocol::kCount));
  detail::protocol::Reader in(reply);
  auto n = in.u64();
  in.expect_end();
  return n;
}

detail::Token BaseManager::create_token(std::string_view type_name, std::string args) const {
  if (state_ != State::kRunning)
    throw ProcessError("the manager is not running: call start() or connect() first");
  return detail::create_object(address_.to_string(), authkey_, serializer_, type_name, args);
}

}  // namespace mproc
