// bench/workloads.cc — the C++ side of mproc's comparison with Python (issue 5).
//
// Runs one named workload of the table with mproc, or one of the reference rows (the
// machine's limits: Boost.Interprocess's message_queue, a raw pipe(2), a raw futex, memcpy), and
// prints one JSON line:
//
//   {"side": "mproc", "impl": "...", "name": "...", "unit": "...", "value": 1.5, "extra": {...}}
//
// bench/python/workloads.py runs the same workloads with Python; bench/compare runs both sides,
// interleaved, and prints the table. Every workload here does what its Python twin does, step for
// step: same counts, same process layout (one producer child, the parent consumes), same start mark
// before the clock.
//
//   mproc_workloads --list
//   mproc_workloads --run queue_64B_msgs [--workers N] [--scale F]
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <ranges>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <boost/interprocess/ipc/message_queue.hpp>

#include "mproc/connection.h"
#include "mproc/init.h"
#include "mproc/pool.h"
#include "mproc/process.h"
#include "mproc/queue.h"
#include "mproc/sharedctypes.h"
#include "mproc/start_method.h"
#include "mproc/sync_manager.h"
#include "mproc/task.h"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// ---- the tasks the pool rows run (the same arithmetic as the Python twins) ----

[[maybe_unused]] std::int64_t square(std::int64_t x) { return x * x; }

// A sum of i*i for i < n, modulo 2^64, as Python's `cpu_loop` computes it. The empty asm keeps
// the compiler from replacing the loop by its closed form or vectorizing it away: this must be
// the same work, iteration by iteration, as the Python loop. Not inlined, so that the serial run
// and the workers execute the very same machine code.
[[gnu::noinline]] std::uint64_t cpu_loop(std::int64_t n) {
  std::uint64_t sum = 0;
  for (std::uint64_t i = 0; i < static_cast<std::uint64_t>(n); ++i) {
    sum += i * i;
    asm volatile("" : "+r"(sum));
  }
  return sum;
}

}  // namespace

MPROC_TASK(square);
MPROC_TASK(cpu_loop);

namespace {

constexpr int kCpuCalls = 40;
constexpr std::int64_t kCpuLoopN = 200'000;

struct Options {
  int workers = mproc::cpu_count();
  // The pool rows run with the default (fork) or, for a row named "name[method]", that method.
  mproc::StartMethod start_method = mproc::StartMethod::fork;
  double scale = 1.0;
  int inner_reps = 3;
  std::vector<int> scaling;
};

mproc::PoolOptions pool_options(const Options& o) {
  return {.processes = o.workers, .start_method = o.start_method};
}

std::int64_t scaled(std::int64_t n, const Options& o) {
  return std::max<std::int64_t>(1, static_cast<std::int64_t>(static_cast<double>(n) * o.scale));
}

// What a run prints.
struct Result {
  std::optional<double> value;
  std::string note;
  std::string impl = "mproc";
  std::vector<std::pair<std::string, std::string>> extra;  // key -> JSON value

  void add(std::string key, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.9g", v);
    extra.emplace_back(std::move(key), buf);
  }
  void add(std::string key, std::int64_t v) {
    extra.emplace_back(std::move(key), std::to_string(v));
  }
  void add_string(std::string key, const std::string& v) {
    extra.emplace_back(std::move(key), "\"" + v + "\"");
  }
  void add_raw(std::string key, std::string json) {
    extra.emplace_back(std::move(key), std::move(json));
  }
};

[[noreturn]] void fail(const std::string& what) { throw std::runtime_error(what); }

void check(bool ok, const char* what) {
  if (!ok) fail(std::string("check failed: ") + what);
}

// ---- the pool rows ----

Result apply_async_roundtrip_latency(const Options& o) {
  std::int64_t n = scaled(2000, o);
  mproc::Pool pool(pool_options(o));
  for (std::int64_t i = 0; i < 10; ++i) (void)pool.apply(square, i);
  auto t0 = Clock::now();
  for (std::int64_t i = 0; i < n; ++i) check(pool.apply_async(square, i).get() == i * i, "square");
  double elapsed = seconds_since(t0);
  pool.close();
  pool.join();
  Result r;
  r.value = elapsed / static_cast<double>(n) * 1e6;
  r.add("round_trips", n);
  return r;
}

Result apply_async_throughput(const Options& o) {
  std::int64_t n = scaled(50'000, o);
  mproc::Pool pool(o.workers);
  auto t0 = Clock::now();
  std::vector<mproc::AsyncResult<std::int64_t>> handles;
  handles.reserve(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) handles.push_back(pool.apply_async(square, i));
  std::int64_t total = 0;
  for (auto& h : handles) total += h.get();
  double elapsed = seconds_since(t0);
  pool.close();
  pool.join();
  std::int64_t expected = 0;
  for (std::int64_t i = 0; i < n; ++i) expected += i * i;
  check(total == expected, "sum of squares");
  Result r;
  r.value = static_cast<double>(n) / elapsed;
  r.add("tasks", n);
  return r;
}

Result map_tiny(const Options& o, std::int64_t n, std::optional<std::size_t> chunksize) {
  mproc::Pool pool(o.workers);
  auto t0 = Clock::now();
  std::vector<std::int64_t> out =
      pool.map(square, std::views::iota(std::int64_t{0}, n), {.chunksize = chunksize});
  double elapsed = seconds_since(t0);
  pool.close();
  pool.join();
  check(static_cast<std::int64_t>(out.size()) == n && out.back() == (n - 1) * (n - 1), "map");
  Result r;
  r.value = static_cast<double>(n) / elapsed;
  r.add("tasks", n);
  return r;
}

Result map_tiny_default_chunks(const Options& o) {
  return map_tiny(o, scaled(1'000'000, o), std::nullopt);
}

Result map_tiny_chunksize1(const Options& o) { return map_tiny(o, scaled(200'000, o), 1); }

Result map_cpu_parallel_efficiency(const Options& o) {
  const std::uint64_t expected = cpu_loop(kCpuLoopN);
  // The whole job takes a few milliseconds here (about a second in Python), so one preemption on
  // a busy machine would swamp it: take the best of five times as many runs as Python does. The
  // serial and pool runs alternate, so that a change in the machine's load hits them alike.
  // One pool at a time: when this was written, a Pool created while another was alive inherited
  // the first one's zygote pipe, and the first one's join() then hung.
  const int reps = 5 * o.inner_reps;
  std::vector<int> counts{o.workers};
  for (int w : o.scaling)
    if (std::find(counts.begin(), counts.end(), w) == counts.end()) counts.push_back(w);
  const std::vector<std::int64_t> inputs(kCpuCalls, kCpuLoopN);
  double serial = INFINITY;
  std::vector<double> parallel(counts.size(), INFINITY);
  auto run_serial = [&] {
    auto t0 = Clock::now();
    std::vector<std::uint64_t> results;
    for (int i = 0; i < kCpuCalls; ++i) results.push_back(cpu_loop(kCpuLoopN));
    serial = std::min(serial, seconds_since(t0));
    for (auto v : results) check(v == expected, "cpu_loop checksum (serial)");
  };
  for (std::size_t k = 0; k < counts.size(); ++k) {
    mproc::Pool pool(counts[k]);
    for (int rep = 0; rep < reps; ++rep) {
      run_serial();
      auto t0 = Clock::now();
      std::vector<std::uint64_t> results = pool.map(cpu_loop, inputs, {.chunksize = 1});
      parallel[k] = std::min(parallel[k], seconds_since(t0));
      for (auto v : results) check(v == expected, "cpu_loop checksum (pool)");
    }
    pool.close();
    pool.join();
  }
  std::string scaling = "[";
  for (int w : o.scaling) {
    auto k = static_cast<std::size_t>(std::find(counts.begin(), counts.end(), w) - counts.begin());
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s[%d, %.6g]", scaling.size() > 1 ? ", " : "", w,
                  serial / parallel[k]);
    scaling += buf;
  }
  scaling += "]";
  Result r;
  r.value = serial / (parallel[0] * o.workers);
  r.add("serial_s", serial);
  r.add("parallel_s", parallel[0]);
  r.add("best_of", std::int64_t{reps});
  r.add_string("checksum", std::to_string(expected));
  r.add_raw("scaling", scaling);
  return r;
}

Result pool_start_stop(const Options& o) {
  std::int64_t n = scaled(10, o);
  std::vector<double> times;
  for (std::int64_t i = 0; i < n; ++i) {
    auto t0 = Clock::now();
    {
      mproc::Pool pool(pool_options(o));
      pool.close();
      pool.join();
    }
    times.push_back(seconds_since(t0));
  }
  std::sort(times.begin(), times.end());
  std::size_t mid = times.size() / 2;
  double median = times.size() % 2 ? times[mid] : (times[mid - 1] + times[mid]) / 2;
  Result r;
  r.value = median * 1e3;
  r.add("cycles", n);
  return r;
}

// ---- the core rows ----

// The queue rows' protocol, the same for mproc, Boost and Python: one producer child puts
// `warmup` untimed messages (one pass through a queue of maxsize 1000, so that a queue that
// preallocates its slots, as Boost's does, is measured warm, as in steady use), then `count`
// timed ones; this process gets them all. The clock starts when the last warm-up message
// arrives and stops when the last message does.
std::int64_t queue_warmup(const Options& o) { return scaled(1000, o); }

double mproc_queue_run(std::int64_t warmup, std::int64_t count, std::size_t size) {
  mproc::Queue<std::string> q(1000);
  mproc::Process producer([q, warmup, count, size]() mutable {
    const std::string payload(size, 'x');
    for (std::int64_t i = 0; i < warmup + count; ++i) q.put(payload);
  });
  producer.start();
  // Into one string, as Boost's receive fills one buffer: after the warm-up, no get allocates.
  std::string item;
  for (std::int64_t i = 0; i < warmup; ++i) q.get_into(item);
  auto t0 = Clock::now();
  std::size_t got = 0;
  for (std::int64_t i = 0; i < count; ++i) {
    q.get_into(item);
    got += item.size();
  }
  double elapsed = seconds_since(t0);
  producer.join();
  check(got == static_cast<std::size_t>(count) * size, "queue bytes");
  check(producer.exitcode() == 0, "producer exit code");
  return elapsed;
}

Result queue_64B_msgs(const Options& o) {
  std::int64_t n = scaled(200'000, o);
  Result r;
  r.value = static_cast<double>(n) / mproc_queue_run(queue_warmup(o), n, 64);
  r.add("messages", n);
  r.add("warmup", queue_warmup(o));
  return r;
}

Result queue_1MiB_bandwidth(const Options& o) {
  std::int64_t n = scaled(500, o);
  Result r;
  r.value = static_cast<double>(n) * (1 << 20) / 1e6 / mproc_queue_run(queue_warmup(o), n, 1 << 20);
  r.add("messages", n);
  r.add("warmup", queue_warmup(o));
  return r;
}

Result pipe_roundtrip_latency(const Options& o) {
  std::int64_t n = scaled(20'000, o);
  auto pipe = mproc::Pipe();
  mproc::Connection& a = pipe.first;
  mproc::Connection& b = pipe.second;
  // The child runs in a forked copy of this frame, so a reference to `b` is its own end.
  mproc::Process echo([&b, n] {
    for (std::int64_t i = 0; i <= n; ++i) b.send(b.recv<std::int64_t>());
  });
  echo.start();
  a.send(std::int64_t{-1});
  (void)a.recv<std::int64_t>();
  auto t0 = Clock::now();
  for (std::int64_t i = 0; i < n; ++i) {
    a.send(i);
    check(a.recv<std::int64_t>() == i, "echo");
  }
  double elapsed = seconds_since(t0);
  echo.join();
  check(echo.exitcode() == 0, "echo exit code");
  Result r;
  r.value = elapsed / static_cast<double>(n) * 1e6;
  r.add("round_trips", n);
  return r;
}

Result manager_dict_set_latency(const Options& o) {
  std::int64_t n = scaled(5000, o);
  mproc::Manager manager;
  auto d = manager.dict<std::int64_t, std::int64_t>();
  d[-1] = 0;  // connects (and sets up the shared channel) outside the timing, as Python's does
  auto t0 = Clock::now();
  for (std::int64_t i = 0; i < n; ++i) d[i] = i;
  double elapsed = seconds_since(t0);
  check(static_cast<std::int64_t>(d.size()) == n + 1, "dict size");
  Result r;
  r.value = elapsed / static_cast<double>(n) * 1e6;
  r.add("calls", n);
  return r;
}

Result value_locked_increment(const Options& o) {
  std::int64_t n = scaled(200'000, o);
  mproc::Value<int> v(0);
  auto t0 = Clock::now();
  for (std::int64_t i = 0; i < n; ++i) {
    std::lock_guard hold(v.get_lock());
    *v += 1;
  }
  double elapsed = seconds_since(t0);
  check(v.value() == n, "final value");
  Result r;
  r.value = static_cast<double>(n) / elapsed;
  r.add("increments", n);
  return r;
}

// ---- the reference rows ----

// A child process made with fork(2), for the reference rows (which must not depend on mproc).
class RawChild {
 public:
  template <class F>
  explicit RawChild(F&& body) {
    std::fflush(nullptr);
    pid_ = ::fork();
    if (pid_ < 0) fail("fork failed");
    if (pid_ == 0) {
      int code = 0;
      try {
        body();
      } catch (const std::exception& e) {
        std::fprintf(stderr, "child: %s\n", e.what());
        code = 1;
      }
      ::_exit(code);
    }
  }
  ~RawChild() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      (void)wait();
    }
  }
  RawChild(const RawChild&) = delete;
  RawChild& operator=(const RawChild&) = delete;
  int wait() {
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    return status;
  }

 private:
  pid_t pid_ = -1;
};

// boost::interprocess::message_queue, maxsize 1000 and `size`-byte slots, with the protocol and
// message counts of the mproc queue rows (see mproc_queue_run). It preallocates all 1000 slots
// (1 GiB for 1 MiB messages); unwarmed, the 1 MiB row would mostly measure first-touch page
// faults (several times slower).
double boost_queue_run(std::int64_t warmup, std::int64_t count, std::size_t size) {
  namespace bip = boost::interprocess;
  const std::string name = "mproc_bench_mq_" + std::to_string(::getpid());
  bip::message_queue::remove(name.c_str());
  struct Remove {
    const std::string& name;
    ~Remove() { bip::message_queue::remove(name.c_str()); }
  } remove{name};
  bip::message_queue mq(bip::create_only, name.c_str(), 1000, size);
  RawChild producer([&] {
    const std::string payload(size, 'x');
    for (std::int64_t i = 0; i < warmup + count; ++i) mq.send(payload.data(), payload.size(), 0);
  });
  std::string buffer(size, '\0');
  bip::message_queue::size_type received = 0;
  unsigned priority = 0;
  for (std::int64_t i = 0; i < warmup; ++i)
    mq.receive(buffer.data(), buffer.size(), received, priority);
  auto t0 = Clock::now();
  std::size_t got = 0;
  for (std::int64_t i = 0; i < count; ++i) {
    mq.receive(buffer.data(), buffer.size(), received, priority);
    got += received;
  }
  double elapsed = seconds_since(t0);
  int status = producer.wait();
  check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "producer exit code");
  check(got == static_cast<std::size_t>(count) * size, "message_queue bytes");
  return elapsed;
}

Result boost_message_queue_64B_msgs(const Options& o) {
  std::int64_t n = scaled(200'000, o);
  Result r;
  r.impl = "boost::interprocess::message_queue";
  r.value = static_cast<double>(n) / boost_queue_run(queue_warmup(o), n, 64);
  r.add("messages", n);
  r.add("warmup", queue_warmup(o));
  return r;
}

Result boost_message_queue_1MiB_bandwidth(const Options& o) {
  std::int64_t n = scaled(500, o);
  Result r;
  r.impl = "boost::interprocess::message_queue";
  r.value = static_cast<double>(n) * (1 << 20) / 1e6 / boost_queue_run(queue_warmup(o), n, 1 << 20);
  r.add("messages", n);
  r.add("warmup", queue_warmup(o));
  return r;
}

void write_all(int fd, const void* data, std::size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::write(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail("write failed");
    p += n;
    size -= static_cast<std::size_t>(n);
  }
}

void read_all(int fd, void* data, std::size_t size) {
  char* p = static_cast<char*>(data);
  while (size > 0) {
    ssize_t n = ::read(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail("read failed");
    p += n;
    size -= static_cast<std::size_t>(n);
  }
}

Result raw_pipe_roundtrip_latency(const Options& o) {
  std::int64_t n = scaled(20'000, o);
  int to_child[2];
  int to_parent[2];
  if (::pipe(to_child) != 0 || ::pipe(to_parent) != 0) fail("pipe failed");
  RawChild echo([&] {
    ::close(to_child[1]);
    ::close(to_parent[0]);
    std::int64_t v = 0;
    for (std::int64_t i = 0; i <= n; ++i) {
      read_all(to_child[0], &v, sizeof v);
      write_all(to_parent[1], &v, sizeof v);
    }
  });
  ::close(to_child[0]);
  ::close(to_parent[1]);
  std::int64_t v = -1;
  write_all(to_child[1], &v, sizeof v);
  read_all(to_parent[0], &v, sizeof v);
  auto t0 = Clock::now();
  for (std::int64_t i = 0; i < n; ++i) {
    write_all(to_child[1], &i, sizeof i);
    read_all(to_parent[0], &v, sizeof v);
    check(v == i, "echo");
  }
  double elapsed = seconds_since(t0);
  int status = echo.wait();
  ::close(to_child[1]);
  ::close(to_parent[0]);
  check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "echo exit code");
  Result r;
  r.impl = "pipe(2)";
  r.value = elapsed / static_cast<double>(n) * 1e6;
  r.add("round_trips", n);
  return r;
}

// Shared (not private) futex operations: the word lives in a MAP_SHARED mapping.
void futex_wait_raw(std::atomic<std::uint32_t>* word, std::uint32_t expected) {
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAIT, expected, nullptr,
            nullptr, 0);
}
void futex_wake_raw(std::atomic<std::uint32_t>* word) {
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAKE, 1, nullptr, nullptr, 0);
}

// Ping-pong on one futex word: the parent stores 2i+1 and wakes the child, which stores 2i+2
// and wakes the parent. Both sides always sleep in the kernel (no spinning): this is the cost of
// a cross-process wake-up round trip, the floor under any blocking primitive.
Result futex_roundtrip_latency(const Options& o) {
  std::int64_t n = scaled(20'000, o);
  void* page = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED) fail("mmap failed");
  static_assert(std::atomic<std::uint32_t>::is_always_lock_free);
  auto* word = ::new (page) std::atomic<std::uint32_t>(0);
  auto wait_for = [word](std::uint32_t target) {
    for (std::uint32_t seen = word->load(); seen != target; seen = word->load())
      futex_wait_raw(word, seen);
  };
  const auto rounds = static_cast<std::uint32_t>(n + 1);
  RawChild peer([&] {
    for (std::uint32_t i = 0; i < rounds; ++i) {
      wait_for(2 * i + 1);
      word->store(2 * i + 2);
      futex_wake_raw(word);
    }
  });
  auto round = [&](std::uint32_t i) {
    word->store(2 * i + 1);
    futex_wake_raw(word);
    wait_for(2 * i + 2);
  };
  round(0);
  auto t0 = Clock::now();
  for (std::uint32_t i = 1; i < rounds; ++i) round(i);
  double elapsed = seconds_since(t0);
  int status = peer.wait();
  ::munmap(page, 4096);
  check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "peer exit code");
  Result r;
  r.impl = "futex(2)";
  r.value = elapsed / static_cast<double>(n) * 1e6;
  r.add("round_trips", n);
  return r;
}

// Copies a 64 MiB buffer (well beyond the caches) in 1 MiB memcpy calls, the size of the
// bandwidth rows' messages; best of a few passes. MB/s of bytes copied.
Result memcpy_bandwidth(const Options& o) {
  constexpr std::size_t kBuffer = std::size_t{64} << 20;
  constexpr std::size_t kBlock = std::size_t{1} << 20;
  std::vector<char> src(kBuffer, 'x');
  std::vector<char> dst(kBuffer, 'y');
  std::int64_t passes = std::max<std::int64_t>(2, scaled(8, o));
  double best = INFINITY;
  for (std::int64_t pass = 0; pass < passes; ++pass) {
    auto t0 = Clock::now();
    for (std::size_t at = 0; at < kBuffer; at += kBlock) {
      std::memcpy(dst.data() + at, src.data() + at, kBlock);
      asm volatile("" : : "r"(dst.data()) : "memory");
    }
    best = std::min(best, seconds_since(t0));
  }
  check(dst[kBuffer - 1] == 'x', "memcpy");
  Result r;
  r.impl = "memcpy";
  r.value = static_cast<double>(kBuffer) / 1e6 / best;
  r.add("bytes", static_cast<std::int64_t>(kBuffer));
  return r;
}

// The machine's own limit for map_cpu_parallel_efficiency: the same 40 calls split evenly over
// `workers` processes forked beforehand, started by one byte on a pipe each and reporting on a
// pipe, with no queue, no pool and no scheduling between calls. Two virtual CPUs that share a
// physical core, or a hypervisor that takes time away, show up here, so the pool's efficiency
// can be read against what this machine allows. Timed and alternated with the serial run as the
// pool row is.
Result cpu_parallel_ceiling(const Options& o) {
  const std::uint64_t expected = cpu_loop(kCpuLoopN);
  const int reps = 5 * o.inner_reps;
  const int workers = o.workers;
  int done[2];
  if (::pipe(done) != 0) fail("pipe failed");
  std::vector<int> starts;
  std::vector<std::unique_ptr<RawChild>> children;
  for (int w = 0; w < workers; ++w) {
    int start[2];
    if (::pipe(start) != 0) fail("pipe failed");
    const int calls = kCpuCalls / workers + (w < kCpuCalls % workers ? 1 : 0);
    children.push_back(std::make_unique<RawChild>([&, read_end = start[0], calls] {
      // Only its own start pipe: the parent's ends of the others must close at the parent's
      // close for their readers to see the end.
      for (int fd : starts) ::close(fd);
      ::close(start[1]);
      ::close(done[0]);
      char go = 0;
      while (::read(read_end, &go, 1) == 1) {
        std::uint64_t wrong = 0;
        for (int i = 0; i < calls; ++i) wrong += cpu_loop(kCpuLoopN) != expected;
        if (::write(done[1], &wrong, sizeof wrong) != sizeof wrong) ::_exit(1);
      }
    }));
    ::close(start[0]);
    starts.push_back(start[1]);
  }
  double serial = INFINITY, parallel = INFINITY;
  for (int rep = 0; rep < reps; ++rep) {
    auto t0 = Clock::now();
    std::uint64_t wrong = 0;
    for (int i = 0; i < kCpuCalls; ++i) wrong += cpu_loop(kCpuLoopN) != expected;
    serial = std::min(serial, seconds_since(t0));
    t0 = Clock::now();
    for (int fd : starts) check(::write(fd, "g", 1) == 1, "start a ceiling process");
    for (int w = 0; w < workers; ++w) {
      std::uint64_t theirs = 0;
      check(::read(done[0], &theirs, sizeof theirs) == sizeof theirs, "ceiling process result");
      wrong += theirs;
    }
    parallel = std::min(parallel, seconds_since(t0));
    check(wrong == 0, "cpu_loop checksum (ceiling)");
  }
  for (int fd : starts) ::close(fd);  // the children's reads end: they leave
  for (auto& child : children) check(child->wait() == 0, "ceiling process exit code");
  ::close(done[0]);
  ::close(done[1]);
  Result r;
  r.impl = "fork(2) + pipe(2)";
  r.value = serial / (parallel * workers);
  r.add("serial_s", serial);
  r.add("parallel_s", parallel);
  r.add("best_of", std::int64_t{reps});
  return r;
}

// ---- the table ----

struct Workload {
  const char* name;
  const char* unit;
  const char* kind;  // "workload" or "reference"
  Result (*run)(const Options&);
};

const Workload kWorkloads[] = {
    {"apply_async_roundtrip_latency", "us", "workload", apply_async_roundtrip_latency},
    {"apply_async_throughput", "tasks/s", "workload", apply_async_throughput},
    {"map_tiny_default_chunks", "tasks/s", "workload", map_tiny_default_chunks},
    {"map_tiny_chunksize1", "tasks/s", "workload", map_tiny_chunksize1},
    {"map_cpu_parallel_efficiency", "ratio", "workload", map_cpu_parallel_efficiency},
    {"queue_64B_msgs", "msgs/s", "workload", queue_64B_msgs},
    {"queue_1MiB_bandwidth", "MB/s", "workload", queue_1MiB_bandwidth},
    {"pipe_roundtrip_latency", "us", "workload", pipe_roundtrip_latency},
    {"manager_dict_set_latency", "us", "workload", manager_dict_set_latency},
    {"value_locked_increment", "ops/s", "workload", value_locked_increment},
    {"pool_start_stop", "ms", "workload", pool_start_stop},
    // Issue 7: the same two pool rows with the workers started by the fork server and by spawn.
    {"apply_async_roundtrip_latency[forkserver]", "us", "workload", apply_async_roundtrip_latency},
    {"apply_async_roundtrip_latency[spawn]", "us", "workload", apply_async_roundtrip_latency},
    {"pool_start_stop[forkserver]", "ms", "workload", pool_start_stop},
    {"pool_start_stop[spawn]", "ms", "workload", pool_start_stop},
    {"boost_message_queue_64B_msgs", "msgs/s", "reference", boost_message_queue_64B_msgs},
    {"boost_message_queue_1MiB_bandwidth", "MB/s", "reference", boost_message_queue_1MiB_bandwidth},
    {"raw_pipe_roundtrip_latency", "us", "reference", raw_pipe_roundtrip_latency},
    {"futex_roundtrip_latency", "us", "reference", futex_roundtrip_latency},
    {"memcpy_bandwidth", "MB/s", "reference", memcpy_bandwidth},
    {"cpu_parallel_ceiling", "ratio", "reference", cpu_parallel_ceiling},
};

void print_result(const Workload& w, const Result& r) {
  std::ostringstream out;
  out << "{\"side\": \"mproc\", \"impl\": \"" << r.impl << "\", \"kind\": \"" << w.kind
      << "\", \"name\": \"" << w.name << "\", \"unit\": \"" << w.unit << "\", \"value\": ";
  if (r.value) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.9g", *r.value);
    out << buf;
  } else {
    out << "null";
  }
  if (!r.note.empty()) out << ", \"note\": \"" << r.note << "\"";
  out << ", \"extra\": {";
  for (std::size_t i = 0; i < r.extra.size(); ++i)
    out << (i ? ", " : "") << "\"" << r.extra[i].first << "\": " << r.extra[i].second;
  out << "}}\n";
  std::fputs(out.str().c_str(), stdout);
  std::fflush(stdout);
}

int usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s --list | --run NAME [--workers N] [--scale F] [--inner-reps K] "
               "[--scaling 1,2,...]\n",
               argv0);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  mproc::init(argc, argv);  // the rows' spawned pools (and their fork server) start here
  Options options;
  std::string run;
  bool list = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) std::exit(usage(argv[0]));
      return argv[++i];
    };
    if (arg == "--list") {
      list = true;
    } else if (arg == "--run") {
      run = value();
    } else if (arg == "--workers") {
      options.workers = std::stoi(value());
    } else if (arg == "--scale") {
      options.scale = std::stod(value());
    } else if (arg == "--inner-reps") {
      options.inner_reps = std::max(1, std::stoi(value()));
    } else if (arg == "--scaling") {
      std::stringstream in(value());
      for (std::string item; std::getline(in, item, ',');)
        if (!item.empty()) options.scaling.push_back(std::stoi(item));
    } else {
      return usage(argv[0]);
    }
  }
  if (list) {
    for (const Workload& w : kWorkloads)
      std::printf("{\"name\": \"%s\", \"unit\": \"%s\", \"kind\": \"%s\"}\n", w.name, w.unit,
                  w.kind);
    return 0;
  }
  for (const Workload& w : kWorkloads) {
    if (run != w.name) continue;
    if (auto open = run.find('['); open != std::string::npos)
      options.start_method = mproc::parse_start_method(run.substr(open + 1, run.size() - open - 2));
    try {
      print_result(w, w.run(options));
      return 0;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s: %s\n", w.name, e.what());
      return 1;
    }
  }
  return usage(argv[0]);
}
