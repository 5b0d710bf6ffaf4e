// Start methods (parity section 2 and the spawn/forkserver lines of section 1): contexts, and
// Process by spawn and by the fork server with every kind of IPC object as an argument.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>

#include "mproc/mproc.h"

#include "support.h"

namespace mp = mproc;
using namespace std::chrono_literals;

namespace {

// ---- tasks the children run

void report_identity(mp::Queue<std::string> out) {
  out.put(mp::current_process().name());
  out.put(mp::parent_process() ? mp::parent_process()->name() : "none");
  out.put(mp::get_start_method());
  out.put(std::to_string(::getppid()));
}
MPROC_TASK(report_identity);

void add_all(int a, std::string b, std::vector<double> c, mp::Queue<std::string> out) {
  out.put(std::to_string(a) + b + std::to_string(c.size()));
}
MPROC_TASK(add_all);

void use_shared(mp::Value<int> value, mp::Array<int> array, mp::Lock lock, mp::Event event) {
  {
    std::scoped_lock guard(lock);
    value.set(value.get() + 41);
  }
  for (std::size_t i = 0; i < array.size(); ++i) array.set(i, array.get(i) * 10);
  event.set();
}
MPROC_TASK(use_shared);

void echo_over(mp::Connection& end) {
  auto v = end.recv<int>();
  end.send(v * 2);
}
MPROC_TASK(echo_over);

void exit_with(int code) { ::_exit(code); }
MPROC_TASK(exit_with);

void throw_value_error() { throw mp::ValueError("from the child"); }
MPROC_TASK(throw_value_error);

void sleep_forever() {
  for (;;) std::this_thread::sleep_for(1s);
}
MPROC_TASK(sleep_forever);

// Exit code 0 when `fd` is not open here (EBADF), 1 when it is.
void check_fd_closed(int fd) { ::_exit(::fcntl(fd, F_GETFD) == -1 && errno == EBADF ? 0 : 1); }
MPROC_TASK(check_fd_closed);

void start_grandchild(mp::Queue<std::string> out) {
  mp::Process grandchild(report_identity, out);
  grandchild.start();
  grandchild.join();
}
MPROC_TASK(start_grandchild);

// Starts a daemonic child by the fork server, reports its pid, then waits to be killed.
void start_daemon_and_wait(mp::Queue<int> out) {
  mp::Process daemon(
      mp::ProcessOptions{.daemon = true, .start_method = mp::StartMethod::forkserver},
      sleep_forever);
  daemon.start();
  out.put(daemon.pid());
  sleep_forever();
}
MPROC_TASK(start_daemon_and_wait);

void sleep_ms(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }
MPROC_TASK(sleep_ms);

// The number of descriptors open in this process.
int open_descriptors() {
  int count = 0;
  for (int fd = 0; fd < 1024; ++fd) count += ::fcntl(fd, F_GETFD) != -1 ? 1 : 0;
  return count;
}

void report_descriptors(mp::Queue<int> out) { out.put(open_descriptors()); }
MPROC_TASK(report_descriptors);

std::string atexit_marker;  // NOLINT: the atexit handler's argument
void write_marker_at_exit(std::string path) {
  atexit_marker = std::move(path);
  std::atexit([] {
    if (FILE* f = std::fopen(atexit_marker.c_str(), "w")) std::fclose(f);
  });
}
MPROC_TASK(write_marker_at_exit);

// Counts the warnings logged when this process forks with and without a second thread.
void count_threaded_fork_warnings(mp::Queue<int> out) {
  auto stream = std::make_shared<std::ostringstream>();
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(*stream);
  mp::get_logger()->sinks().push_back(sink);
  auto warnings = [&] {
    int n = 0;
    for (std::size_t at = 0;
         (at = stream->str().find("forking it may deadlock", at)) != std::string::npos; ++at)
      ++n;
    return n;
  };
  auto fork_once = [] {
    mp::Process p(mp::ProcessOptions{.start_method = mp::StartMethod::fork}, exit_with, 0);
    p.start();
    p.join();
  };
  fork_once();
  out.put(warnings());  // one thread: no warning
  std::atomic<bool> stop{false};
  std::thread other([&] {
    while (!stop) std::this_thread::sleep_for(1ms);
  });
  fork_once();
  fork_once();
  stop = true;
  other.join();
  out.put(warnings());  // once only
  mp::get_logger()->sinks().pop_back();
}
MPROC_TASK(count_threaded_fork_warnings);

// Uses one of each remaining kind of shared object; the parent checks the effects.
void use_the_rest(mp::Semaphore semaphore, mp::RLock rlock, mp::Barrier barrier,
                  mp::JoinableQueue<int> joinable, mp::SimpleQueue<std::string> simple,
                  mp::RawValue<double> raw) {
  joinable.put(joinable.get() + 1);
  joinable.task_done();
  simple.put("simple");
  raw.set(2.5);
  {
    std::scoped_lock a(rlock);
    std::scoped_lock b(rlock);  // reentrant
  }
  semaphore.release();
  (void)barrier.wait();
}
MPROC_TASK(use_the_rest);

// A SharedMemory block travels alone (it is move-only): the child writes into it.
void write_shared_memory(mp::SharedMemory& memory) { memory.buf()[0] = std::byte{'x'}; }
MPROC_TASK(write_shared_memory);

// A condition, a bounded semaphore, a raw array and a manager proxy, from a child.
void use_condition_and_proxy(mp::Condition condition, mp::BoundedSemaphore bounded,
                             mp::RawArray<int> raw, mp::ValueProxy<int> proxy) {
  raw.set(0, 7);
  proxy.set(proxy.get() + 1);
  bounded.release();
  std::scoped_lock hold(condition);
  condition.notify_all();
}
MPROC_TASK(use_condition_and_proxy);

struct Greeter {
  std::string greeting;
  void operator()(mp::Queue<std::string> out) const { out.put(greeting + ", " + "world"); }
  template <class Ar>
  void serialize(Ar& ar, unsigned) {
    ar& greeting;
  }
};
MPROC_TASK(Greeter);

const mp::StartMethod kExecMethods[] = {mp::StartMethod::spawn, mp::StartMethod::forkserver};

class ByMethod : public testing::TestWithParam<mp::StartMethod> {
 protected:
  mp::ProcessOptions options() const { return {.start_method = GetParam()}; }
};

std::string method_name(const testing::TestParamInfo<mp::StartMethod>& info) {
  return std::string(mp::to_string(info.param));
}

bool process_gone(pid_t pid, std::chrono::milliseconds within) {
  int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) return true;
  pollfd p{fd, POLLIN, 0};
  int r = ::poll(&p, 1, static_cast<int>(within.count()));
  ::close(fd);
  return r == 1;
}

}  // namespace

// ---- contexts (parity 2.1)

TEST(StartMethod, ContextsNameTheirMethod) {
  for (const std::string& m : mp::get_all_start_methods()) {
    mp::Context ctx = mp::get_context(m);
    EXPECT_EQ(ctx.get_start_method(), m);
    EXPECT_EQ(&ctx.get_context(), &ctx);
    EXPECT_THROW(ctx.set_start_method("fork"), mp::ValueError);
  }
  EXPECT_THROW((void)mp::get_context("threads"), mp::ValueError);
}

TEST(StartMethod, AllMethodsListedDefaultFirst) {
  auto all = mp::get_all_start_methods();
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all.front(), std::string(mp::to_string(mp::default_start_method())));
  for (const char* m : {"fork", "spawn", "forkserver"})
    EXPECT_NE(std::find(all.begin(), all.end(), m), all.end()) << m;
}

TEST(StartMethod, SetIsFixedUnlessForced) {
  auto child = mp::test::fork_and_wait([] {
    if (mp::get_start_method(true).has_value()) return 10;  // nothing fixed it yet
    mp::set_start_method("spawn");
    if (mp::get_start_method() != "spawn") return 11;
    try {
      mp::set_start_method("fork");
      return 12;
    } catch (const mp::ProcessError&) {
    }
    for (const char* m : {"fork", "forkserver", "spawn"}) {
      mp::set_start_method(m, true);
      if (mp::get_start_method() != m) return 13;
      if (mp::get_context().get_start_method() != m) return 14;
    }
    return 0;
  });
  EXPECT_EQ(child.code, 0);
}

// ---- Process by spawn and by the fork server

TEST_P(ByMethod, ChildKnowsWhoItIsAndItsMethod) {
  mp::Queue<std::string> out;
  mp::Process p(options(), report_identity, out);
  EXPECT_EQ(p.start_method(), GetParam());
  p.start();
  EXPECT_TRUE(p.join(20s));
  EXPECT_EQ(p.exitcode(), 0);
  EXPECT_EQ(out.get(5s), p.name());
  EXPECT_EQ(out.get(5s), "MainProcess");
  EXPECT_EQ(out.get(5s), std::string(mp::to_string(GetParam())));
  const pid_t child_parent = std::stoi(out.get(5s));
  if (GetParam() == mp::StartMethod::spawn) {
    EXPECT_EQ(child_parent, ::getpid());
  } else {
    EXPECT_EQ(child_parent, mp::detail::forkserver_pid());
  }
}

TEST_P(ByMethod, ContextProcessUsesItsMethod) {
  mp::Queue<std::string> out;
  mp::Process p = mp::get_context(mp::to_string(GetParam())).Process(report_identity, out);
  p.start();
  EXPECT_TRUE(p.join(20s));
  (void)out.get(5s);
  (void)out.get(5s);
  EXPECT_EQ(out.get(5s), std::string(mp::to_string(GetParam())));
}

TEST_P(ByMethod, ArgumentsArriveConverted) {
  mp::Queue<std::string> out;
  mp::Process p(options(), add_all, 4, "two", std::vector<double>{1, 2, 3}, out);
  p.start();
  EXPECT_TRUE(p.join(20s));
  EXPECT_EQ(p.exitcode(), 0);
  EXPECT_EQ(out.get(5s), "4two3");
}

TEST_P(ByMethod, CallableObjectTarget) {
  mp::Queue<std::string> out;
  mp::Process p(options(), Greeter{"hello"}, out);
  p.start();
  EXPECT_TRUE(p.join(20s));
  EXPECT_EQ(out.get(5s), "hello, world");
}

TEST_P(ByMethod, SharedObjectsTravelByName) {
  mp::Value<int> value(1);
  mp::Array<int> array{1, 2, 3};
  mp::Lock lock;
  mp::Event event;
  mp::Process p(options(), use_shared, value, array, lock, event);
  p.start();
  EXPECT_TRUE(p.join(20s));
  EXPECT_EQ(p.exitcode(), 0);
  EXPECT_EQ(value.get(), 42);
  EXPECT_EQ(array.get(2), 30);
  EXPECT_TRUE(event.is_set());
}

TEST_P(ByMethod, EveryOtherSharedObjectTravelsByName) {
  mp::Semaphore semaphore(0);
  mp::RLock rlock;
  mp::Barrier barrier(2);
  mp::JoinableQueue<int> joinable;
  mp::SimpleQueue<std::string> simple;
  mp::RawValue<double> raw(0.0);
  joinable.put(41);
  mp::Process p(options(), use_the_rest, semaphore, rlock, barrier, joinable, simple, raw);
  p.start();
  // The child has done everything else when it releases the semaphore.
  EXPECT_TRUE(semaphore.acquire(20s));
  EXPECT_EQ(joinable.get(5s), 42);
  joinable.task_done();
  EXPECT_EQ(simple.get(mp::Deadline::after(5s)), "simple");
  EXPECT_EQ(raw.get(), 2.5);
  EXPECT_GE(barrier.wait(20s), 0);  // the child is the other party
  EXPECT_TRUE(p.join(20s));
  EXPECT_EQ(p.exitcode(), 0);
  if (p.is_alive()) p.kill();  // a failed check must not leave it for the exit to wait on
}

TEST_P(ByMethod, ConditionBoundedSemaphoreRawArrayAndManagerProxyTravelByName) {
  mp::Manager manager;
  auto proxy = manager.Value<int>(41);
  mp::Condition condition;
  mp::BoundedSemaphore bounded(1);
  ASSERT_TRUE(bounded.acquire(false));
  mp::RawArray<int> raw(3);
  mp::Process p(options(), use_condition_and_proxy, condition, bounded, raw, proxy);
  p.start();
  EXPECT_TRUE(bounded.acquire(20s));  // released by the child
  EXPECT_TRUE(p.join(20s));
  EXPECT_EQ(p.exitcode(), 0);
  EXPECT_EQ(raw.get(0), 7);
  EXPECT_EQ(proxy.get(), 42);
  EXPECT_THROW(bounded.release(2), mp::ValueError);  // still bounded: it is the same object
  if (p.is_alive()) p.kill();
}

TEST_P(ByMethod, SharedMemoryTravelsByName) {
  mp::SharedMemory memory(mp::SharedMemoryOptions{.create = true, .size = 16});
  const std::string name(memory.name());
  mp::Process p(options(), write_shared_memory, mp::SharedMemory(std::string_view(name)));
  p.start();
  EXPECT_TRUE(p.join(20s));
  EXPECT_EQ(p.exitcode(), 0);
  EXPECT_EQ(memory.buf()[0], std::byte{'x'});
}

TEST_P(ByMethod, ConnectionEndTravelsAsADescriptor) {
  auto [ours, theirs] = mp::Pipe();
  mp::Process p(options(), echo_over, std::move(theirs));
  p.start();
  ours.send(21);
  ASSERT_TRUE(ours.poll(20s));
  EXPECT_EQ(ours.recv<int>(), 42);
  EXPECT_TRUE(p.join(20s));
  EXPECT_EQ(p.exitcode(), 0);
}

TEST_P(ByMethod, ExitCodesAndExceptions) {
  mp::Process exits(options(), exit_with, 7);
  mp::Process throws(options(), throw_value_error);
  exits.start();
  throws.start();
  EXPECT_TRUE(exits.join(20s));
  EXPECT_TRUE(throws.join(20s));
  EXPECT_EQ(exits.exitcode(), 7);
  EXPECT_EQ(throws.exitcode(), 1);
}

TEST_P(ByMethod, KilledChildReportsTheSignalAndSentinelWakes) {
  mp::Process p(options(), sleep_forever);
  p.start();
  EXPECT_TRUE(p.is_alive());
  p.kill();
  auto ready = mp::wait(std::vector<int>{p.sentinel()}, 20s);
  EXPECT_EQ(ready.size(), 1u);
  EXPECT_TRUE(p.join(20s));
  EXPECT_EQ(p.exitcode(), -SIGKILL);
  EXPECT_FALSE(p.is_alive());
}

TEST_P(ByMethod, TerminateAndActiveChildren) {
  mp::Process p(options(), sleep_forever);
  p.start();
  bool listed = false;
  for (const auto& c : mp::active_children()) listed = listed || c.pid() == p.pid();
  EXPECT_TRUE(listed);
  p.terminate();
  EXPECT_TRUE(p.join(20s));
  EXPECT_EQ(p.exitcode(), -SIGTERM);
}

TEST_P(ByMethod, LambdaTargetIsRefused) {
  mp::Process p(options(), [] {});
  EXPECT_THROW(p.start(), mp::ProcessError);
}

TEST_P(ByMethod, UnregisteredFunctionIsRefused) {
  mp::Process p(
      options(), +[](int) {}, 3);
  EXPECT_THROW(p.start(), mp::NotRegisteredError);
}

TEST_P(ByMethod, SubclassOverridingRunIsRefused) {
  struct Sub : mp::Process {
    using mp::Process::Process;
    void run() override {}
  };
  Sub p;
  p.set_start_method(GetParam());
  EXPECT_THROW(p.start(), mp::ProcessError);
}

// Parity 1.3 TestCloseFds: a high descriptor that is not CLOEXEC is inherited by fork only.
TEST_P(ByMethod, UnrelatedDescriptorIsNotInherited) {
  int fd = ::open("/dev/null", O_RDONLY);  // deliberately without O_CLOEXEC
  ASSERT_GE(fd, 0);
  int high = ::fcntl(fd, F_DUPFD, 100);
  ::close(fd);
  mp::Process p(options(), check_fd_closed, high);
  p.start();
  EXPECT_TRUE(p.join(20s));
  EXPECT_EQ(p.exitcode(), 0);
  mp::Process forked(mp::ProcessOptions{.start_method = mp::StartMethod::fork}, check_fd_closed,
                     high);
  forked.start();
  EXPECT_TRUE(forked.join(20s));
  EXPECT_EQ(forked.exitcode(), 1);
  ::close(high);
}

// Parity 2.1 test_nested_startmethod: a child passes its own argument on to a grandchild.
TEST_P(ByMethod, ChildPassesItsQueueToAGrandchild) {
  mp::Queue<std::string> out;
  mp::Process p(options(), start_grandchild, out);
  p.start();
  EXPECT_TRUE(p.join(30s));
  EXPECT_EQ(p.exitcode(), 0);
  EXPECT_EQ(out.get(5s), p.name() + ":1");
  EXPECT_EQ(out.get(5s), p.name());
  EXPECT_EQ(out.get(5s), std::string(mp::to_string(GetParam())));
}

// Parity 1.1 test_many_processes (100 under the fork server, 5 under spawn).
TEST_P(ByMethod, ManyProcessesExitOrAreTerminated) {
  const int n = GetParam() == mp::StartMethod::spawn ? 5 : 100;
  std::vector<mp::Process> sleepers;
  for (int i = 0; i < n; ++i) sleepers.emplace_back(options(), sleep_ms, 10);
  for (auto& p : sleepers) p.start();
  for (auto& p : sleepers) {
    EXPECT_TRUE(p.join(30s));
    EXPECT_EQ(p.exitcode(), 0);
  }
  std::vector<mp::Process> terminated;
  for (int i = 0; i < n; ++i) terminated.emplace_back(options(), sleep_ms, 10000);
  for (auto& p : terminated) p.start();
  for (auto& p : terminated) p.terminate();
  for (auto& p : terminated) {
    EXPECT_TRUE(p.join(30s));
    EXPECT_EQ(p.exitcode(), -SIGTERM);
  }
}

// Parity 1.1 test_child_fd_inflation: a child's descriptors do not grow with its siblings.
TEST_P(ByMethod, ChildDescriptorsDoNotGrowWithSiblings) {
  mp::Queue<int> out;
  auto count_in_a_child = [&] {
    mp::Process p(options(), report_descriptors, out);
    p.start();
    EXPECT_TRUE(p.join(20s));
    return out.get(5s);
  };
  const int alone = count_in_a_child();
  std::vector<mp::Process> siblings;
  for (int i = 0; i < 5; ++i) siblings.emplace_back(options(), sleep_ms, 10000);
  for (auto& p : siblings) p.start();
  EXPECT_EQ(count_in_a_child(), alone);
  for (auto& p : siblings) p.kill();
  for (auto& p : siblings) EXPECT_TRUE(p.join(20s));
}

// Parity 1.3 test_atexit (adapted): a child started by spawn or the fork server is a program of
// its own, whose atexit handlers run when it ends normally.
TEST_P(ByMethod, AtexitHandlersOfTheChildRun) {
  const std::string marker = testing::TempDir() + "/mproc-atexit-" + std::to_string(::getpid()) +
                             std::string(mp::to_string(GetParam()));
  std::filesystem::remove(marker);
  mp::Process p(options(), write_marker_at_exit, marker);
  p.start();
  EXPECT_TRUE(p.join(20s));
  EXPECT_EQ(p.exitcode(), 0);
  EXPECT_TRUE(std::filesystem::exists(marker));
  std::filesystem::remove(marker);
}

INSTANTIATE_TEST_SUITE_P(Exec, ByMethod, testing::ValuesIn(kExecMethods), method_name);

// ---- the fork server itself

TEST(ForkServer, WrongKeyIsAnAuthenticationError) {
  mp::Process p(mp::ProcessOptions{.start_method = mp::StartMethod::forkserver}, exit_with, 0);
  p.start();  // makes sure there is a server
  EXPECT_TRUE(p.join(20s));
  const std::string address = mp::detail::forkserver_address_text();
  ASSERT_FALSE(address.empty());
  EXPECT_THROW((void)mp::Client(mp::Address(address), std::string(32, 'k')),
               mp::AuthenticationError);
  // It still serves.
  mp::Process q(mp::ProcessOptions{.start_method = mp::StartMethod::forkserver}, exit_with, 3);
  q.start();
  EXPECT_TRUE(q.join(20s));
  EXPECT_EQ(q.exitcode(), 3);
}

TEST(ForkServer, KilledServerIsRestartedOnTheNextStart) {
  mp::Process p(mp::ProcessOptions{.start_method = mp::StartMethod::forkserver}, exit_with, 0);
  p.start();
  EXPECT_TRUE(p.join(20s));
  const pid_t server = mp::detail::forkserver_pid();
  ASSERT_GT(server, 0);
  ASSERT_EQ(::kill(server, SIGKILL), 0);
  ASSERT_TRUE(process_gone(server, 5000ms));
  mp::Process q(mp::ProcessOptions{.start_method = mp::StartMethod::forkserver}, exit_with, 5);
  q.start();
  EXPECT_TRUE(q.join(20s));
  EXPECT_EQ(q.exitcode(), 5);
  EXPECT_NE(mp::detail::forkserver_pid(), server);
}

TEST(ForkServer, DaemonEndsWhenItsRequesterDies) {
  mp::Queue<int> out;
  mp::Process requester(start_daemon_and_wait, out);  // forked; its daemon comes from the server
  requester.start();
  const pid_t daemon = out.get(20s);
  requester.kill();
  EXPECT_TRUE(requester.join(20s));
  const bool ended = process_gone(daemon, 10000ms);
  if (!ended) ::kill(daemon, SIGKILL);  // else it holds ctest's output pipe until the timeout
  EXPECT_TRUE(ended);
}

// Parity 1.1 test_forkserver_sigint / test_forkserver_sigkill.
TEST(ForkServer, InFlightChildOfAKilledServerEndsWith0Or255) {
  for (int sig : {SIGINT, SIGKILL}) {
    mp::Process in_flight(mp::ProcessOptions{.start_method = mp::StartMethod::forkserver}, sleep_ms,
                          300);
    in_flight.start();
    const pid_t server = mp::detail::forkserver_pid();
    ASSERT_GT(server, 0);
    ASSERT_EQ(::kill(server, sig), 0);
    if (sig == SIGKILL) {
      ASSERT_TRUE(process_gone(server, 5000ms));
    }
    mp::Process next(mp::ProcessOptions{.start_method = mp::StartMethod::forkserver}, exit_with, 0);
    next.start();
    EXPECT_TRUE(next.join(20s));
    EXPECT_EQ(next.exitcode(), 0);
    EXPECT_TRUE(in_flight.join(20s));
    EXPECT_TRUE(in_flight.exitcode() == 0 || in_flight.exitcode() == 255) << *in_flight.exitcode();
  }
}

// Parity 1.1 test_forkserver_auth_is_enabled / test_forkserver_without_auth_fails.
TEST(ForkServer, AuthenticationIsEnabled) {
  mp::detail::set_forkserver_authkey(mp::current_process().authkey());
  mp::Process p(mp::ProcessOptions{.start_method = mp::StartMethod::forkserver}, exit_with, 0);
  p.start();
  EXPECT_TRUE(p.join(20s));
  EXPECT_GT(mp::current_process().authkey().size(), 15u);
  mp::Connection raw = mp::Client(mp::Address(mp::detail::forkserver_address_text()),
                                  mp::current_process().authkey());
  EXPECT_FALSE(raw.closed());
  raw.close();  // the server drops a client that sends no request

  mp::detail::set_forkserver_authkey("wrong");
  mp::Process refused(mp::ProcessOptions{.start_method = mp::StartMethod::forkserver}, exit_with,
                      0);
  EXPECT_THROW(refused.start(), mp::AuthenticationError);
  mp::detail::set_forkserver_authkey(mp::current_process().authkey());
  mp::Process again(mp::ProcessOptions{.start_method = mp::StartMethod::forkserver}, exit_with, 0);
  again.start();
  EXPECT_TRUE(again.join(20s));
  EXPECT_EQ(again.exitcode(), 0);
}

// Parity 1.1 test_set_executable (adapted: the program a spawn child runs).
TEST(Spawn, SetExecutable) {
  const std::string self = std::filesystem::read_symlink("/proc/self/exe");
  EXPECT_EQ(mp::get_executable(), "/proc/self/exe");
  mp::set_executable(self);
  mp::Process p(mp::ProcessOptions{.start_method = mp::StartMethod::spawn}, exit_with, 0);
  p.start();
  EXPECT_TRUE(p.join(20s));
  EXPECT_EQ(p.exitcode(), 0);
  mp::set_executable("/nonexistent/program");
  mp::Process q(mp::ProcessOptions{.start_method = mp::StartMethod::spawn}, exit_with, 0);
  EXPECT_THROW(q.start(), std::system_error);
  mp::set_executable("/proc/self/exe");
}

// A process with several threads that forks logs a warning, once (as Python 3.12).
TEST(Fork, ThreadedParentWarnsOnce) {
  mp::Queue<int> out;
  // In a spawned child: a fresh program, which has never warned.
  mp::Process p(mp::ProcessOptions{.start_method = mp::StartMethod::spawn},
                count_threaded_fork_warnings, out);
  p.start();
  EXPECT_TRUE(p.join(20s));
  EXPECT_EQ(p.exitcode(), 0);
  EXPECT_EQ(out.get(5s), 0);
  EXPECT_EQ(out.get(5s), 1);
}

// Without mproc::init in main, a spawned child (or a fork server) would run the program again:
// starting one is refused, with the fix in the message.
TEST(Spawn, ProgramWithoutInitIsRefusedClearly) {
  auto run = mp::test::run_program(NO_INIT_PROGRAM, {}, 30s);
  ASSERT_FALSE(run.timed_out);
  EXPECT_EQ(run.exit_code, 0) << run.out << run.err;
  auto lines = mp::test::lines_of(run.out);
  ASSERT_EQ(lines.size(), 2u) << run.out;
  EXPECT_TRUE(lines[0].starts_with("spawn: ")) << lines[0];
  EXPECT_TRUE(lines[1].starts_with("forkserver: ")) << lines[1];
  for (const auto& line : lines) EXPECT_NE(line.find("mproc::init(argc, argv)"), std::string::npos);
}
