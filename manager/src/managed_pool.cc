#include "mproc/managed_pool.h"

#include <chrono>
#include <condition_variable>
#include <exception>
#include <map>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "mproc/errors.h"
#include "mproc/log.h"
#include "mproc/pool.h"
#include "mproc/task.h"

#include "managed_pool_registry.h"
#include "managed_wait.h"

namespace mproc::detail {

// What a managed pool's workers run: the task the client named, with the arguments the client
// encoded. The server only relays bytes, so it needs none of the task's types.
struct ManagedPoolCall {
  std::string name;
  std::string operator()(const std::string& args) const { return invoke_task(name, args); }
  template <class Ar>
  void serialize(Ar& ar, unsigned /*version*/) {
    ar& name;
  }
};

}  // namespace mproc::detail

MPROC_TASK(mproc::detail::ManagedPoolCall);

namespace mproc::detail {
namespace {

// A count from the wire as PoolOptions wants it; ValueError out of range.
std::optional<int> checked_count(std::optional<std::int64_t> v, const char* what) {
  if (!v) return std::nullopt;
  if (*v < 1 || *v > (1 << 20))
    throw ValueError(std::string(what) + " must be between 1 and 2**20");
  return static_cast<int>(*v);
}

class Registry {
 public:
  static Registry& get() {
    static Registry* r = new Registry;  // never destroyed: pools may outlive static destructors
    return *r;
  }
  std::uint64_t add(const std::shared_ptr<PoolKeeper>& keeper) {
    std::lock_guard lock(mutex_);
    std::uint64_t key = next_key_++;
    pools_.emplace(key, keeper);
    return key;
  }
  void remove(std::uint64_t key) noexcept {
    std::lock_guard lock(mutex_);
    pools_.erase(key);
  }
  std::shared_ptr<PoolKeeper> find(std::uint64_t key) {
    std::lock_guard lock(mutex_);
    auto it = pools_.find(key);
    std::shared_ptr<PoolKeeper> keeper = it == pools_.end() ? nullptr : it->second.lock();
    if (!keeper) throw KeyError("manager: no managed Pool with key " + std::to_string(key));
    return keeper;
  }
  std::vector<std::shared_ptr<PoolKeeper>> all() {
    std::lock_guard lock(mutex_);
    std::vector<std::shared_ptr<PoolKeeper>> out;
    for (auto& [key, weak] : pools_)
      if (auto keeper = weak.lock()) out.push_back(std::move(keeper));
    return out;
  }

 private:
  std::mutex mutex_;
  std::map<std::uint64_t, std::weak_ptr<PoolKeeper>> pools_;
  std::uint64_t next_key_ = 1;
};

}  // namespace

// A mproc::Pool made, and finally terminated and joined, on a thread of its own (managed_pool.h
// says why). Calls hold a lease (a shared_ptr) on the pool while they use it, so that the pool
// is destroyed -- its segments unlinked -- by whoever lets go of it last once it is shut down.
class PoolKeeper {
 public:
  explicit PoolKeeper(PoolOptions options) {
    thread_ =
        std::thread([this, options = std::move(options)]() mutable { run(std::move(options)); });
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return started_; });
    if (error_) {
      lock.unlock();
      thread_.join();
      std::rethrow_exception(error_);
    }
  }
  ~PoolKeeper() {
    Registry::get().remove(key_);
    shut_down();
  }
  PoolKeeper(const PoolKeeper&) = delete;
  PoolKeeper& operator=(const PoolKeeper&) = delete;

  // The pool, for the length of one call; ValueError once it is shut down.
  [[nodiscard]] std::shared_ptr<mproc::Pool> lease() const {
    std::lock_guard lock(mutex_);
    if (!pool_) throw ValueError("Pool not running (its manager is shutting down)");
    return pool_;
  }
  [[nodiscard]] std::uint64_t key() const noexcept { return key_; }
  void set_key(std::uint64_t key) noexcept { key_ = key; }

  // Terminates and joins the pool (on its keeper thread), waits for that, and lets go of the
  // pool; returns it weakly, to see when the calls still using it are done. Idempotent; any
  // thread but the keeper's.
  std::weak_ptr<mproc::Pool> shut_down() noexcept {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    changed_.notify_all();
    std::call_once(joined_, [&] { thread_.join(); });
    return released_;
  }

 private:
  void run(PoolOptions options) {
    std::shared_ptr<mproc::Pool> pool;
    try {
      pool = std::make_shared<mproc::Pool>(std::move(options));
    } catch (...) {
      std::lock_guard lock(mutex_);
      error_ = std::current_exception();
      started_ = true;
      changed_.notify_all();
      return;
    }
    {
      std::unique_lock lock(mutex_);
      pool_ = pool;
      started_ = true;
      changed_.notify_all();
      changed_.wait(lock, [&] { return stop_; });
      pool_.reset();  // no new lease from now on
      released_ = pool;
    }
    try {
      pool->terminate();  // fails what is pending: blocked calls return and give their lease back
      pool->join();       // here, while the thread that forked the pool's zygote still runs
    } catch (const std::exception& e) {
      get_logger()->warn("managed pool: cannot shut down: {}", e.what());
    }
  }

  std::shared_ptr<mproc::Pool> pool_;
  std::weak_ptr<mproc::Pool> released_;
  std::uint64_t key_ = 0;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  bool started_ = false;
  bool stop_ = false;
  std::exception_ptr error_;
  std::thread thread_;
  std::once_flag joined_;
};

// A submitted call: one apply_async or one map_async, and the pool it runs on.
struct PoolResultState {
  std::shared_ptr<PoolKeeper> keeper;
  std::optional<AsyncResult<std::string>> one;
  std::optional<AsyncResult<std::vector<std::string>>> many;
};

void terminate_pool_quietly(const BaseProxy& pool) noexcept {
  try {
    (void)pool.call_encoded("terminate", {});
  } catch (const std::exception& e) {
    get_logger()->warn("PoolScope: cannot terminate the pool: {}", e.what());
  } catch (...) {
    get_logger()->warn("PoolScope: cannot terminate the pool");
  }
}

void shut_down_managed_pools() noexcept {
  std::vector<std::weak_ptr<mproc::Pool>> pools;
  for (const auto& keeper : Registry::get().all()) pools.push_back(keeper->shut_down());
  // Calls that were blocked in a pool fail now and give it back; the last one destroys it, which
  // unlinks its segments. Waited for briefly: the server's owner allows it a second to exit.
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
  for (const auto& pool : pools) {
    while (!pool.expired() && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

}  // namespace mproc::detail

namespace mproc::managed {

using detail::dispatch;
using detail::ManagedPoolCall;
using detail::Method;

Pool::Pool(std::optional<std::int64_t> processes, std::optional<std::int64_t> maxtasksperchild) {
  // Task calls and results are in the task codec (binary, same build only): over a text
  // manager they would silently lose the portability the client asked for.
  if (detail::current_serializer() != Serializer::kBinary) {
    throw ValueError(std::string("a manager's Pool needs the binary serializer (its tasks travel "
                                 "in the binary task codec); this manager uses '") +
                     std::string(serializer_name(detail::current_serializer())) + "'");
  }
  PoolOptions options;
  options.processes = detail::checked_count(processes, "processes");
  options.maxtasksperchild = detail::checked_count(maxtasksperchild, "maxtasksperchild");
  keeper_ = std::make_shared<detail::PoolKeeper>(std::move(options));
  keeper_->set_key(detail::Registry::get().add(keeper_));
}

Pool::~Pool() = default;

std::span<const Method<Pool>> Pool::exposed_methods() {
  static const Method<Pool> methods[] = {
      {"apply", &dispatch<&Pool::apply>}, {"map", &dispatch<&Pool::map>},
      {"close", &dispatch<&Pool::close>}, {"terminate", &dispatch<&Pool::terminate>},
      {"join", &dispatch<&Pool::join>},   {"processes", &dispatch<&Pool::processes>},
      {"key", &dispatch<&Pool::key>},
  };
  return methods;
}

std::string Pool::apply(const std::string& name, const std::string& args) {
  return keeper_->lease()->apply(ManagedPoolCall{name}, args);
}

std::vector<std::string> Pool::map(const std::string& name, const std::vector<std::string>& args,
                                   std::optional<std::int64_t> chunksize) {
  MapOptions options;
  if (chunksize) {
    if (*chunksize < 1) throw ValueError("chunksize must be at least 1");
    options.chunksize = static_cast<std::size_t>(*chunksize);
  }
  return keeper_->lease()->map(ManagedPoolCall{name}, args, options);
}

void Pool::close() { keeper_->lease()->close(); }
void Pool::terminate() { keeper_->lease()->terminate(); }
void Pool::join() { keeper_->lease()->join(); }
std::int64_t Pool::processes() const { return keeper_->lease()->processes(); }
std::uint64_t Pool::key() const { return keeper_->key(); }

// ---- PoolResult

std::shared_ptr<PoolResult> PoolResult::apply_async(std::uint64_t pool_key, std::string name,
                                                    std::string args) {
  auto state = std::make_shared<detail::PoolResultState>();
  state->keeper = detail::Registry::get().find(pool_key);
  state->one.emplace(state->keeper->lease()->apply_async(ManagedPoolCall{std::move(name)}, args));
  return std::make_shared<PoolResult>(std::move(state));
}

std::shared_ptr<PoolResult> PoolResult::map_async(std::uint64_t pool_key, std::string name,
                                                  std::vector<std::string> args,
                                                  std::optional<std::int64_t> chunksize) {
  MapAsyncOptions<std::string> options;
  if (chunksize) {
    if (*chunksize < 1) throw ValueError("chunksize must be at least 1");
    options.chunksize = static_cast<std::size_t>(*chunksize);
  }
  auto state = std::make_shared<detail::PoolResultState>();
  state->keeper = detail::Registry::get().find(pool_key);
  state->many.emplace(state->keeper->lease()->map_async(ManagedPoolCall{std::move(name)},
                                                        std::move(args), std::move(options)));
  return std::make_shared<PoolResult>(std::move(state));
}

PoolResult::PoolResult(std::shared_ptr<detail::PoolResultState> state) : state_(std::move(state)) {}

std::span<const Method<PoolResult>> PoolResult::exposed_methods() {
  static const Method<PoolResult> methods[] = {
      {"get", &dispatch<&PoolResult::get>},
      {"wait", &dispatch<&PoolResult::wait>},
      {"ready", &dispatch<&PoolResult::ready>},
      {"successful", &dispatch<&PoolResult::successful>},
  };
  return methods;
}

std::string PoolResult::get(std::optional<double> timeout) {
  const Deadline deadline = wait_detail::wait_deadline(timeout);
  if (state_->one) return state_->one->get(deadline);
  return encode(state_->many->get(deadline));
}

bool PoolResult::wait(std::optional<double> timeout) {
  const Deadline deadline = wait_detail::wait_deadline(timeout);
  return state_->one ? state_->one->wait(deadline) : state_->many->wait(deadline);
}

bool PoolResult::ready() const {
  return state_->one ? state_->one->ready() : state_->many->ready();
}

bool PoolResult::successful() const {
  return state_->one ? state_->one->successful() : state_->many->successful();
}

}  // namespace mproc::managed
