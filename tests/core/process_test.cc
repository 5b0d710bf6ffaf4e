// Process, current_process, parent_process, active_children, cpu_count: parity section 1 of
// cpython_behaviours.md (fork start method).
#include "mproc/process.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "mproc/errors.h"
#include "mproc/log.h"
#include "mproc/queue.h"
#include "mproc/shm.h"
#include "mproc/wait.h"

#include "support.h"

namespace mproc {
namespace {

using namespace std::chrono_literals;
using test::fork_and_wait;
using test::seconds_to_run;

// A pipe(2) pair closed on scope exit (Pipe is another component's; the tests need only bytes).
struct RawPipe {
  int fds[2] = {-1, -1};
  RawPipe() { EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0); }
  ~RawPipe() {
    close_read();
    close_write();
  }
  RawPipe(const RawPipe&) = delete;
  RawPipe& operator=(const RawPipe&) = delete;
  [[nodiscard]] int r() const { return fds[0]; }
  [[nodiscard]] int w() const { return fds[1]; }
  void close_read() {
    if (fds[0] >= 0) ::close(std::exchange(fds[0], -1));
  }
  void close_write() {
    if (fds[1] >= 0) ::close(std::exchange(fds[1], -1));
  }
  void write(const std::string& s) const {
    ASSERT_EQ(::write(fds[1], s.data(), s.size()), static_cast<ssize_t>(s.size()));
  }
  // Reads until `n` bytes, EOF or `timeout`.
  [[nodiscard]] std::string read(std::size_t n, std::chrono::milliseconds timeout = 10s) const {
    std::string out;
    auto deadline = Deadline::after(timeout);
    while (out.size() < n) {
      pollfd p{fds[0], POLLIN, 0};
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline.remaining());
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      char buf[256];
      ssize_t got = ::read(fds[0], buf, std::min(sizeof buf, n - out.size()));
      if (got <= 0) break;
      out.append(buf, static_cast<std::size_t>(got));
    }
    return out;
  }
  // Reads everything until EOF (or `timeout`).
  [[nodiscard]] std::string read_all(std::chrono::milliseconds timeout = 10s) const {
    return read(1 << 20, timeout);
  }
};

// Blocks the calling child until the test writes a byte (or closes the pipe).
void wait_for_go(int fd) {
  char c = 0;
  (void)::read(fd, &c, 1);
}

bool contains_pid(const std::vector<ChildProcess>& children, pid_t pid) {
  return std::any_of(children.begin(), children.end(),
                     [&](const ChildProcess& c) { return c.pid() == pid; });
}

// A small piece of shared memory for a child's answer.
struct Shared {
  SharedSegment seg = SharedSegment::create(4096);
  std::atomic<int>& at(int i) const { return static_cast<std::atomic<int>*>(seg.data())[i]; }
};

// ---------------------------------------------------------------------------------------------
// test_current, test_parent_process_attributes, test_parent_process

TEST(CurrentProcess, InMainIsMainProcessAliveNotDaemonWithAuthkey) {
  CurrentProcess me = current_process();
  EXPECT_EQ(me.name(), "MainProcess");
  EXPECT_TRUE(me.is_alive());
  EXPECT_FALSE(me.daemon());
  EXPECT_EQ(me.authkey().size(), 32u);
  EXPECT_EQ(me.ident(), ::getpid());
  EXPECT_EQ(me.pid(), ::getpid());
  EXPECT_EQ(me.exitcode(), std::nullopt);
}

TEST(CurrentProcess, InChildCarriesTheProcessNameDaemonFlagAndAuthkey) {
  std::string key = current_process().authkey();
  Process p(ProcessOptions{.name = "Worker", .daemon = true}, [&] {
    CurrentProcess me = current_process();
    if (me.name() != "Worker" || !me.daemon() || me.authkey() != key) std::_Exit(3);
    if (me.pid() != ::getpid()) std::_Exit(4);
  });
  p.start();
  p.join();
  EXPECT_EQ(p.exitcode(), 0);
}

TEST(ParentProcess, IsNulloptInTheMainProcess) { EXPECT_FALSE(parent_process().has_value()); }

TEST(ParentProcess, InAChildHasTheParentsPidAndNameAndIsAlive) {
  pid_t parent = ::getpid();
  Process p([&] {
    auto pp = parent_process();
    if (!pp) std::_Exit(2);
    if (pp->pid() != parent || pp->ident() != parent) std::_Exit(3);
    if (pp->name() != "MainProcess") std::_Exit(4);
    if (!pp->is_alive()) std::_Exit(5);
    if (pp->join(Deadline::now())) std::_Exit(6);  // the parent has not exited
  });
  p.start();
  p.join();
  EXPECT_EQ(p.exitcode(), 0);
}

TEST(ParentProcess, GrandchildSeesItsTerminatedParentDieAndJoinReturns) {
  RawPipe out;
  Process child(ProcessOptions{.name = "Middle"}, [&] {
    Process grandchild([&] {
      auto pp = parent_process();
      if (!pp || pp->name() != "Middle" || !pp->is_alive()) {
        out.write("bad-start\n");
        return;
      }
      out.write("ready\n");
      bool ended = pp->join(20s);
      out.write(ended && !pp->is_alive() ? "parent-dead\n" : "parent-alive\n");
    });
    grandchild.start();
    ::pause();  // until terminated
  });
  child.start();
  EXPECT_EQ(out.read(6), "ready\n");
  child.terminate();
  child.join();
  EXPECT_EQ(child.exitcode(), -SIGTERM);
  EXPECT_EQ(out.read(12), "parent-dead\n");
}

// ---------------------------------------------------------------------------------------------
// test_process, test_active_children, test_args_argument, test_daemon_argument

TEST(Process, LifecycleBeforeStartWhileRunningAndAfterJoin) {
  RawPipe go;
  Process p([&] {
    wait_for_go(go.r());
    if (current_process().authkey() != Process([] {}).authkey()) std::_Exit(5);
  });
  EXPECT_FALSE(p.is_alive());
  EXPECT_EQ(p.exitcode(), std::nullopt);
  EXPECT_EQ(p.ident(), std::nullopt);
  EXPECT_EQ(p.pid(), 0);
  EXPECT_EQ(p.authkey(), current_process().authkey());
  EXPECT_TRUE(active_children().empty());

  p.start();
  EXPECT_TRUE(p.is_alive());
  EXPECT_EQ(p.exitcode(), std::nullopt);
  EXPECT_GT(p.pid(), 0);
  EXPECT_EQ(p.ident(), p.pid());
  EXPECT_TRUE(contains_pid(active_children(), p.pid()));

  go.write("x");
  p.join();
  EXPECT_EQ(p.exitcode(), 0);
  EXPECT_FALSE(p.is_alive());
  EXPECT_FALSE(contains_pid(active_children(), p.pid()));
}

TEST(Process, TheChildKnowsItsOwnNamePidAndIsAlive) {
  struct Self : Process {
    Self() : Process(ProcessOptions{.name = "Selfish"}) {}
    void run() override {
      if (name() != "Selfish" || current_process().name() != "Selfish") std::_Exit(2);
      if (pid() != ::getpid() || !is_alive()) std::_Exit(3);
      if (exitcode() != std::nullopt) std::_Exit(4);
    }
  };
  Self p;
  p.start();
  p.join();
  EXPECT_EQ(p.exitcode(), 0);
}

TEST(Process, ArgumentsArriveIntactInTheChild) {
  auto check = [](int i, const std::string& s, const std::vector<int>& v) {
    if (i != 7 || s != "seven" || v != std::vector<int>{1, 2, 3}) std::_Exit(9);
  };
  Process p(check, 7, std::string("seven"), std::vector<int>{1, 2, 3});
  p.start();
  p.join();
  EXPECT_EQ(p.exitcode(), 0);
}

TEST(Process, ArgumentsAreCopiedAtConstruction) {
  int value = 1;
  Process p([](int v) { std::_Exit(v); }, value);
  value = 2;
  p.start();
  p.join();
  EXPECT_EQ(p.exitcode(), 1);
}

TEST(Process, OptionsAndArgumentsTogether) {
  Process p(
      ProcessOptions{.name = "Adder"}, [](int a, int b) { std::_Exit(a + b); }, 2, 3);
  EXPECT_EQ(p.name(), "Adder");
  p.start();
  p.join();
  EXPECT_EQ(p.exitcode(), 5);
}

TEST(Process, MoveOnlyTargetsAndArgumentsWork) {
  auto seven = std::make_unique<int>(7);
  Process p([v = std::move(seven)] { std::_Exit(*v); });
  p.start();
  p.join();
  EXPECT_EQ(p.exitcode(), 7);
  Process q([](std::unique_ptr<int>& v) { std::_Exit(*v); }, std::make_unique<int>(8));
  q.start();
  q.join();
  EXPECT_EQ(q.exitcode(), 8);
}

TEST(Process, ReturnValueOfTheTargetIsIgnored) {
  Process p([] { return 42; });
  p.start();
  p.join();
  EXPECT_EQ(p.exitcode(), 0);
}

TEST(Process, DaemonDefaultsToTheCreatorsFlagAndTheOptionOverridesIt) {
  EXPECT_FALSE(Process([] {}).daemon());
  EXPECT_TRUE(Process([] {}, {.daemon = true}).daemon());
  Process d([] {
    // Inside a daemon, a new Process inherits daemon=true; the option overrides it.
    if (!Process([] {}).daemon()) std::_Exit(2);
    if (Process([] {}, {.daemon = false}).daemon()) std::_Exit(3);
  });
  d.set_daemon(true);
  d.start();
  d.join();
  EXPECT_EQ(d.exitcode(), 0);
}

TEST(ActiveChildren, ListsOnlyStartedChildrenThatRun) {
  RawPipe go;
  Process a([&] { wait_for_go(go.r()); });
  Process b([&] { wait_for_go(go.r()); });
  a.start();
  EXPECT_TRUE(contains_pid(active_children(), a.pid()));
  EXPECT_EQ(active_children().size(), 1u);
  b.start();
  EXPECT_EQ(active_children().size(), 2u);
  go.write("x");  // releases one of them
  auto one_left = [&] { return active_children().size() == 1; };
  for (int i = 0; i < 500 && !one_left(); ++i) std::this_thread::sleep_for(10ms);
  EXPECT_TRUE(one_left());  // the finished one was reaped by active_children()
  go.write("x");
  a.join();
  b.join();
  EXPECT_TRUE(active_children().empty());
}

// ---------------------------------------------------------------------------------------------
// Names

TEST(Process, DefaultNamesCountUpPerCreatingProcess) {
  Process a([] {});
  Process b([] {});
  ASSERT_EQ(a.name().rfind("Process-", 0), 0u);
  int n = std::stoi(a.name().substr(8));
  EXPECT_EQ(b.name(), "Process-" + std::to_string(n + 1));
}

struct ClockProcess : Process {
  void run() override {}
};

TEST(Process, ASubclassIsNamedAfterItsClass) {
  ClockProcess c;
  EXPECT_EQ(c.name().rfind("ClockProcess-", 0), 0u) << c.name();
}

TEST(Process, ChildrenOfAChildAreNumberedFromOneWithAColon) {
  Process p([] {
    std::string me = current_process().name();
    Process first([] {
      if (parent_process()->name().empty()) std::_Exit(2);
    });
    Process second([] {});
    if (first.name() != me + ":1" || second.name() != me + ":2") std::_Exit(3);
    first.start();
    first.join();
    if (first.exitcode() != 0) std::_Exit(4);
  });
  p.start();
  p.join();
  EXPECT_EQ(p.exitcode(), 0);
}

TEST(Process, AnEmptyNameGetsTheDefaultAsInPython) {
  Process p([] {}, {.name = ""});
  EXPECT_EQ(p.name().rfind("Process-", 0), 0u) << p.name();
}

TEST(Process, AHandleSharesTheStateAndCanTerminateTheChild) {
  Process p([] { ::pause(); });
  EXPECT_THROW((void)p.handle(), ValueError);
  p.start();
  ChildProcess h = p.handle();
  EXPECT_EQ(h.pid(), p.pid());
  EXPECT_EQ(h.name(), p.name());
  EXPECT_TRUE(h.is_alive());
  h.terminate();
  EXPECT_TRUE(h.join(20s));
  EXPECT_EQ(p.exitcode(), -SIGTERM);  // reaped through the handle, seen by the Process
  EXPECT_FALSE(p.is_alive());
}

TEST(Process, SetNameChangesTheName) {
  Process p([] {
    if (current_process().name() != "Renamed") std::_Exit(2);
  });
  p.set_name("Renamed");
  EXPECT_EQ(p.name(), "Renamed");
  p.start();
  p.join();
  EXPECT_EQ(p.exitcode(), 0);
}

// ---------------------------------------------------------------------------------------------
// test_process_mainthread_native_id, test_recursion, test_many_processes

TEST(Process, TheChildIsANewOsProcess) {
  RawPipe out;
  Process p([&] { out.write(std::to_string(::gettid()) + "\n"); });
  p.start();
  p.join();
  out.close_write();
  std::string tid = out.read_all(5s);
  ASSERT_FALSE(tid.empty());
  EXPECT_NE(std::stoi(tid), ::gettid());
  EXPECT_NE(std::stoi(tid), ::getpid());
}

void recurse(const RawPipe& out, const std::string& id, int depth) {
  out.write("[" + id + "]\n");
  if (depth < 2) {
    for (int i = 0; i < 2; ++i) {
      Process p(recurse, std::cref(out), id + std::to_string(i), depth + 1);
      p.start();
      p.join();
      if (p.exitcode() != 0) std::_Exit(2);
    }
  }
}

TEST(Process, ChildrenCanStartAndJoinTheirOwnChildrenInPreorder) {
  RawPipe out;
  Process root(recurse, std::cref(out), std::string(), 0);
  root.start();
  root.join();
  EXPECT_EQ(root.exitcode(), 0);
  out.close_write();
  EXPECT_EQ(out.read_all(), "[]\n[0]\n[00]\n[01]\n[1]\n[10]\n[11]\n");
}

TEST(Process, HundredProcessesAllExitZero) {
  std::vector<Process> procs;
  for (int i = 0; i < 100; ++i) procs.emplace_back([] { ::usleep(10'000); });
  for (auto& p : procs) p.start();
  for (auto& p : procs) p.join();
  for (auto& p : procs) EXPECT_EQ(p.exitcode(), 0);
}

TEST(Process, HundredProcessesTerminatedRightAfterStartReportMinusSigterm) {
  std::vector<Process> procs;
  for (int i = 0; i < 100; ++i) procs.emplace_back([] { ::sleep(30); });
  for (auto& p : procs) p.start();
  for (auto& p : procs) p.terminate();
  for (auto& p : procs) p.join();
  for (auto& p : procs) EXPECT_EQ(p.exitcode(), -SIGTERM);
}

// ---------------------------------------------------------------------------------------------
// Exit codes: test_terminate, test_kill, test_interrupt[_no_handler]

TEST(Process, TerminateGivesMinusSigterm) {
  Process p([] { ::pause(); });
  p.start();
  p.terminate();
  p.join();
  EXPECT_EQ(p.exitcode(), -SIGTERM);
}

TEST(Process, KillGivesMinusSigkill) {
  Process p([] { ::pause(); });
  p.start();
  p.kill();
  p.join();
  EXPECT_EQ(p.exitcode(), -SIGKILL);
}

TEST(Process, TerminateAfterTheChildWasReapedDoesNothing) {
  Process p([] {});
  p.start();
  p.join();
  p.terminate();
  p.kill();
  EXPECT_EQ(p.exitcode(), 0);
}

TEST(Process, ExitStatusOfTheChildIsTheExitcode) {
  Process p([] { ::_exit(3); });
  p.start();
  p.join();
  EXPECT_EQ(p.exitcode(), 3);
}

TEST(Process, SigintWithTheDefaultDispositionGivesMinusSigint) {
  RawPipe ready;
  Process p([&] {
    ::signal(SIGINT, SIG_DFL);
    ready.write("r");
    for (;;) ::pause();
  });
  p.start();
  ASSERT_EQ(ready.read(1), "r");
  p.interrupt();
  p.join();
  EXPECT_EQ(p.exitcode(), -SIGINT);
}

volatile sig_atomic_t g_interrupted = 0;

// Python's KeyboardInterrupt gives exit code 1: in C++ a handler whose flag makes the target
// throw does the same.
TEST(Process, SigintHandlerThatMakesTheTargetThrowGivesExitCodeOne) {
  RawPipe ready;
  Process p([&] {
    struct sigaction sa {};
    sa.sa_handler = [](int) { g_interrupted = 1; };
    ::sigaction(SIGINT, &sa, nullptr);
    ready.write("r");
    while (!g_interrupted) ::pause();
    throw std::runtime_error("KeyboardInterrupt");
  });
  p.start();
  ASSERT_EQ(ready.read(1), "r");
  p.interrupt();
  p.join();
  EXPECT_EQ(p.exitcode(), 1);
}

// ---------------------------------------------------------------------------------------------
// Uncaught exceptions and stdio: test_stderr_flush, test_error_on_stdio_flush_1/2

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct TempFile {
  std::string path = "/tmp/mproc-process-test-XXXXXX";
  TempFile() {
    int fd = ::mkstemp(path.data());
    EXPECT_GE(fd, 0);
    ::close(fd);
  }
  ~TempFile() { ::unlink(path.c_str()); }
};

TEST(Process, UncaughtExceptionGivesExitCodeOneAndItsTypeAndMessageOnStderr) {
  TempFile file;
  Process p(ProcessOptions{.name = "Thrower"}, [&] {
    int fd = ::open(file.path.c_str(), O_WRONLY);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    std::printf("partial output;");  // buffered: flushed only at exit
    throw std::runtime_error("boom");
  });
  p.start();
  p.join();
  EXPECT_EQ(p.exitcode(), 1);
  std::string text = read_file(file.path);
  EXPECT_NE(text.find("partial output;"), std::string::npos) << text;
  EXPECT_NE(text.find("Process Thrower: std::runtime_error: boom\n"), std::string::npos) << text;
}

TEST(Process, NonStandardExceptionIsReportedByItsType) {
  TempFile file;
  Process p(ProcessOptions{.name = "IntThrower"}, [&] {
    int fd = ::open(file.path.c_str(), O_WRONLY);
    ::dup2(fd, 2);
    throw 42;
  });
  p.start();
  p.join();
  EXPECT_EQ(p.exitcode(), 1);
  EXPECT_NE(read_file(file.path).find("Process IntThrower: int"), std::string::npos);
}

TEST(Process, MprocErrorTypesAreNamedWithTheirNamespace) {
  TempFile file;
  Process p(ProcessOptions{.name = "E"}, [&] {
    int fd = ::open(file.path.c_str(), O_WRONLY);
    ::dup2(fd, 2);
    throw ValueError("bad value");
  });
  p.start();
  p.join();
  EXPECT_NE(read_file(file.path).find("Process E: mproc::ValueError: bad value"),
            std::string::npos);
}

TEST(Process, ChildWorksWhenTheParentsStdoutAndStderrAreClosed) {
  auto result = fork_and_wait([] {
    ::close(1);
    ::close(2);
    Process p([] {
      std::printf("to a closed stdout\n");
      std::cout << "and via iostream" << std::endl;
      std::fprintf(stderr, "to a closed stderr\n");
    });
    p.start();
    p.join();
    return p.exitcode() == 0 ? 0 : 1;
  });
  EXPECT_EQ(result.code, 0);
}

TEST(Process, ChildThatClosesItsOwnStdoutAndStderrExitsZero) {
  TempFile file;
  Process p([&] {
    int fd = ::open(file.path.c_str(), O_WRONLY);
    ::dup2(fd, 1);
    std::printf("unflushed");
    ::close(1);
    ::close(2);
  });
  p.start();
  p.join();
  EXPECT_EQ(p.exitcode(), 0);
}

// ---------------------------------------------------------------------------------------------
// test_wait_for_threads [ADAPT], test_atexit [ADAPT]

TEST(Process, ThreadsJoinedByTheTargetFinishBeforeTheChildExits) {
  Shared shared;
  Process p([&] {
    std::jthread worker([&] {
      std::this_thread::sleep_for(200ms);
      shared.at(0) = 1;
    });
    std::thread([] { ::pause(); }).detach();  // like a daemon thread: does not hold exit up
  });
  p.start();
  EXPECT_TRUE(p.join(20s));
  EXPECT_EQ(p.exitcode(), 0);
  EXPECT_EQ(shared.at(0).load(), 1);
}

std::atomic<int>* g_atexit_flag = nullptr;

TEST(Process, StdAtexitHandlersDoNotRunWhenTheChildEnds) {
  Shared shared;
  g_atexit_flag = &shared.at(0);
  Process p([] { std::atexit([] { *g_atexit_flag = 1; }); });
  p.start();
  p.join();
  EXPECT_EQ(p.exitcode(), 0);
  EXPECT_EQ(shared.at(0).load(), 0);  // the child left with _exit
}

// ---------------------------------------------------------------------------------------------
// join: test_poll_eintr, timeouts

std::atomic<int> g_alarms{0};

TEST(Process, JoinRetriesWhenASignalHandlerInterruptsIt) {
  struct sigaction sa {
  }, old{};
  sa.sa_handler = [](int) { ++g_alarms; };
  ::sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: the wait really sees EINTR
  ASSERT_EQ(::sigaction(SIGALRM, &sa, &old), 0);
  Process p([] { ::usleep(400'000); });
  p.start();
  itimerval every_20ms{{0, 20'000}, {0, 20'000}};
  ::setitimer(ITIMER_REAL, &every_20ms, nullptr);
  p.join();
  itimerval off{};
  ::setitimer(ITIMER_REAL, &off, nullptr);
  ::sigaction(SIGALRM, &old, nullptr);
  EXPECT_EQ(p.exitcode(), 0);
  EXPECT_GE(g_alarms.load(), 3);
}

TEST(Process, TimedJoinWakesWhenTheChildExits) {
  Process p([] { ::usleep(200'000); });
  p.start();
  bool done = false;
  double took = seconds_to_run([&] { done = p.join(20s); });
  EXPECT_TRUE(done);
  EXPECT_EQ(p.exitcode(), 0);
  EXPECT_LT(took, 5.0);
}

TEST(Process, TimedJoinOnARunningChildReturnsFalseAfterTheTimeout) {
  Process p([] { ::pause(); });
  p.start();
  bool done = true;
  double took = seconds_to_run([&] { done = p.join(500ms); });
  EXPECT_FALSE(done);
  EXPECT_GE(took, 0.4);
  EXPECT_LT(took, 3.0);
  EXPECT_TRUE(p.is_alive());
  EXPECT_EQ(p.exitcode(), std::nullopt);
  p.kill();
  p.join();
}

TEST(Process, JoinFromSeveralThreadsAllReturn) {
  Process p([] { ::usleep(100'000); });
  p.start();
  std::vector<std::jthread> joiners;
  std::atomic<int> joined{0};
  for (int i = 0; i < 4; ++i)
    joiners.emplace_back([&] {
      p.join();
      ++joined;
    });
  joiners.clear();
  EXPECT_EQ(joined.load(), 4);
  EXPECT_EQ(p.exitcode(), 0);
}

// ---------------------------------------------------------------------------------------------
// test_sentinel, test_close

TEST(Process, SentinelBeforeStartThrowsValueError) {
  Process p([] {});
  EXPECT_THROW((void)p.sentinel(), ValueError);
}

TEST(Process, SentinelBecomesReadableWhenTheChildExits) {
  RawPipe go;
  Process p([&] { wait_for_go(go.r()); });
  p.start();
  int s = p.sentinel();
  EXPECT_GE(s, 0);
  EXPECT_TRUE(wait({s}, Deadline::now()).empty());
  go.write("x");
  EXPECT_EQ(wait({s}, 20s), std::vector<int>{s});
  p.join();
  EXPECT_EQ(wait({s}, Deadline::now()), std::vector<int>{s});
}

TEST(Process, CloseOfARunningProcessThrowsValueError) {
  Process p([] { ::pause(); });
  p.start();
  EXPECT_THROW(p.close(), ValueError);
  p.terminate();
  p.join();
}

TEST(Process, CloseAfterJoinSucceedsTwiceAndThenEverythingThrowsValueError) {
  Process p([] {});
  p.start();
  p.join();
  p.close();
  p.close();
  EXPECT_THROW((void)p.is_alive(), ValueError);
  EXPECT_THROW(p.join(), ValueError);
  EXPECT_THROW(p.terminate(), ValueError);
  EXPECT_THROW(p.kill(), ValueError);
  EXPECT_THROW((void)p.exitcode(), ValueError);
  EXPECT_THROW((void)p.sentinel(), ValueError);
  EXPECT_THROW((void)p.pid(), ValueError);
  EXPECT_THROW(p.start(), ValueError);
}

TEST(Process, CloseOfAnUnstartedProcessSucceeds) {
  Process p([] {});
  p.close();
  EXPECT_THROW(p.start(), ValueError);
}

// ---------------------------------------------------------------------------------------------
// Misuse

TEST(Process, StartingTwiceThrowsProcessError) {
  Process p([] {});
  p.start();
  EXPECT_THROW(p.start(), ProcessError);
  p.join();
  EXPECT_THROW(p.start(), ProcessError);
}

TEST(Process, JoinTerminateAndKillOfAnUnstartedProcessThrowProcessError) {
  Process p([] {});
  EXPECT_THROW(p.join(), ProcessError);
  EXPECT_THROW(p.join(1s), ProcessError);
  EXPECT_THROW(p.terminate(), ProcessError);
  EXPECT_THROW(p.kill(), ProcessError);
}

TEST(Process, SetDaemonAfterStartThrowsProcessError) {
  Process p([] {});
  p.start();
  EXPECT_THROW(p.set_daemon(true), ProcessError);
  p.join();
}

TEST(Process, ADaemonCannotStartChildren) {
  Process d(
      [] {
        Process child([] {});
        try {
          child.start();
        } catch (const ProcessError& e) {
          if (std::string(e.what()).find("daemonic processes are not allowed to have children") !=
              std::string::npos)
            return;
        }
        std::_Exit(2);
      },
      {.daemon = true});
  d.start();
  d.join();
  EXPECT_EQ(d.exitcode(), 0);
}

TEST(Process, AProcessJoiningItselfThrowsProcessError) {
  struct SelfJoiner : Process {
    void run() override {
      try {
        join(Deadline::now());
      } catch (const ProcessError&) {
        return;
      }
      std::_Exit(2);
    }
  };
  SelfJoiner p;
  p.start();
  p.join();
  EXPECT_EQ(p.exitcode(), 0);
}

TEST(Process, AnotherProcessCannotStartOrJoinIt) {
  Process p([] {});
  auto result = fork_and_wait([&] {
    try {
      p.start();
      return 2;
    } catch (const ProcessError&) {
    }
    try {
      p.join();
      return 3;
    } catch (const ProcessError&) {
    }
    return 0;
  });
  EXPECT_EQ(result.code, 0);
}

TEST(Process, AMovedFromProcessThrowsValueError) {
  Process a([] { ::_exit(4); });
  Process b(std::move(a));
  EXPECT_THROW((void)a.name(), ValueError);  // NOLINT(bugprone-use-after-move)
  EXPECT_THROW(a.start(), ValueError);       // NOLINT(bugprone-use-after-move)
  b.start();
  Process c = std::move(b);
  c.join();
  EXPECT_EQ(c.exitcode(), 4);
}

// ---------------------------------------------------------------------------------------------
// Subclassing: test_subclassing (an upper-casing echo server over raw pipes), seed n

class UpperEcho : public Process {
 public:
  UpperEcho(int in, int out, int unused) : in_(in), out_(out), unused_(unused) {}
  void run() override {
    ::close(unused_);  // the requests' write end: else this child never sees EOF
    char buf[256];
    for (;;) {
      ssize_t n = ::read(in_, buf, sizeof buf);
      if (n <= 0) return;  // EOF: the parent closed its end
      for (ssize_t i = 0; i < n; ++i)
        buf[i] = static_cast<char>(std::toupper(static_cast<unsigned char>(buf[i])));
      if (::write(out_, buf, static_cast<std::size_t>(n)) != n) std::_Exit(2);
    }
  }

 private:
  int in_, out_, unused_;
};

TEST(Process, ASubclassOverridingRunServesRequestsOverAPipe) {
  RawPipe requests, replies;
  UpperEcho server(requests.r(), replies.w(), requests.w());
  server.start();
  requests.write("hello");
  EXPECT_EQ(replies.read(5), "HELLO");
  requests.write("world!");
  EXPECT_EQ(replies.read(6), "WORLD!");
  requests.close_write();
  server.join();
  EXPECT_EQ(server.exitcode(), 0);
}

// ---------------------------------------------------------------------------------------------
// Reaping, the destructor and exit

TEST(Process, JoinRemovesTheSegmentsOfAKilledChildAtOnce) {
  RawPipe ready;
  Process p([&] {
    auto seg = SharedSegment::create(4096);
    ready.write("r");
    ::pause();
  });
  p.start();
  ASSERT_EQ(ready.read(1), "r");
  EXPECT_EQ(detail::count_segments_of(p.pid()), 1u);
  p.kill();
  p.join();
  EXPECT_EQ(detail::count_segments_of(p.pid()), 0u);
}

bool pid_is_gone(pid_t pid) { return ::kill(pid, 0) != 0 && errno == ESRCH; }

TEST(Process, DestroyingARunningDaemonTerminatesAndReapsIt) {
  pid_t pid = 0;
  {
    Process p([] { ::pause(); }, {.daemon = true});
    p.start();
    pid = p.pid();
  }
  EXPECT_TRUE(pid_is_gone(pid));
  EXPECT_TRUE(active_children().empty());
}

TEST(Process, DestroyingADaemonThatIgnoresSigtermKillsItAfterTheGracePeriod) {
  RawPipe ready;
  pid_t pid = 0;
  double took = seconds_to_run([&] {
    Process p(
        [&] {
          ::signal(SIGTERM, SIG_IGN);
          ready.write("r");
          for (;;) ::pause();
        },
        {.daemon = true});
    p.start();
    pid = p.pid();
    ASSERT_EQ(ready.read(1), "r");
  });
  EXPECT_TRUE(pid_is_gone(pid));
  EXPECT_GE(took, 0.9);
  EXPECT_LT(took, 10.0);
}

TEST(Process, DestroyingARunningNonDaemonLeavesItRunningInActiveChildren) {
  RawPipe go;
  pid_t pid = 0;
  {
    Process p([&] { wait_for_go(go.r()); });
    p.start();
    pid = p.pid();
  }
  auto children = active_children();
  ASSERT_TRUE(contains_pid(children, pid));
  ASSERT_EQ(children.size(), 1u);
  ChildProcess child = children.front();
  EXPECT_TRUE(child.is_alive());
  EXPECT_FALSE(child.daemon());
  go.write("x");
  EXPECT_TRUE(child.join(20s));
  EXPECT_EQ(child.exitcode(), 0);
  EXPECT_TRUE(active_children().empty());
}

TEST(Process, DestroyingAnExitedChildReapsIt) {
  pid_t pid = 0;
  {
    Process p([] {});
    p.start();
    pid = p.pid();
    ASSERT_TRUE(wait({p.sentinel()}, 20s).size() == 1);
  }
  EXPECT_TRUE(pid_is_gone(pid));  // no zombie: the test's leak check would also notice
}

TEST(Process, NormalExitJoinsNonDaemonChildrenAndTerminatesDaemons) {
  Shared shared;
  auto result = fork_and_wait([&]() -> int {
    {
      Process slow([&] {
        ::usleep(300'000);
        shared.at(0) = 1;
      });
      slow.start();
    }
    auto* daemon = new Process([] { ::pause(); }, {.daemon = true});  // never destroyed
    daemon->start();
    shared.at(1) = daemon->pid();
    std::exit(0);  // the atexit handler: terminate the daemon, join the slow child
  });
  EXPECT_EQ(result.code, 0);
  EXPECT_EQ(shared.at(0).load(), 1);
  EXPECT_TRUE(pid_is_gone(shared.at(1).load()));
}

TEST(Process, ADaemonDiesWhenItsParentIsKilled) {
  Shared shared;
  auto result = fork_and_wait([&] {
    auto* daemon = new Process([] { ::pause(); }, {.daemon = true});
    daemon->start();
    shared.at(0) = daemon->pid();
    ::raise(SIGKILL);
    return 0;
  });
  EXPECT_EQ(result.code, -SIGKILL);
  pid_t pid = shared.at(0).load();
  ASSERT_GT(pid, 0);
  int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd >= 0) {  // not gone yet: it must go soon
    EXPECT_EQ(wait({fd}, 20s), std::vector<int>{fd});
    ::close(fd);
  }
}

// ---------------------------------------------------------------------------------------------
// TestCloseFds (fork part), TestStdinBadfiledescriptor

TEST(Process, UnderForkTheChildInheritsAnUnrelatedFd) {
  RawPipe out;
  int high = ::fcntl(out.w(), F_DUPFD, 200);  // not close-on-exec, unknown to mproc
  ASSERT_GE(high, 200);
  Process p([high] {
    if (::write(high, "inherited", 9) != 9) std::_Exit(2);
  });
  p.start();
  p.join();
  ::close(high);
  EXPECT_EQ(p.exitcode(), 0);
  EXPECT_EQ(out.read(9), "inherited");
}

TEST(Process, TheChildReadsStdinFromDevNull) {
  Process p([] {
    char c;
    if (::read(STDIN_FILENO, &c, 1) != 0) std::_Exit(2);  // at once: EOF
  });
  p.start();
  EXPECT_TRUE(p.join(20s));
  EXPECT_EQ(p.exitcode(), 0);
}

TEST(Process, AChildCanStartASubprocessThatUsesAQueue) {
  Process p([] {
    Queue<int> q;
    Process producer([&] { q.put(42); });
    producer.start();
    int got = q.get(Deadline::after(20s));
    producer.join();
    if (got != 42 || producer.exitcode() != 0) std::_Exit(2);
  });
  p.start();
  p.join();
  EXPECT_EQ(p.exitcode(), 0);
}

// ---------------------------------------------------------------------------------------------
// Logging, cpu_count

TEST(Process, LogsStartSignalsAndExitAtDebugLevel) {
  TempFile file;
  auto result = fork_and_wait([&] {
    int fd = ::open(file.path.c_str(), O_WRONLY);
    ::dup2(fd, 2);
    log_to_stderr(spdlog::level::debug);
    Process p([] { ::pause(); }, {.name = "Logged"});
    p.start();
    p.terminate();
    p.join();
    return 0;
  });
  EXPECT_EQ(result.code, 0);
  std::string text = read_file(file.path);
  EXPECT_NE(text.find("started Logged (pid"), std::string::npos) << text;
  EXPECT_NE(text.find("sending SIGTERM to Logged"), std::string::npos) << text;
  EXPECT_NE(text.find("exited with exitcode -15"), std::string::npos) << text;
}

TEST(CpuCount, IsAtLeastOneAndAtMostTheConfiguredCpus) {
  int n = cpu_count();
  EXPECT_GE(n, 1);
  EXPECT_LE(n, std::max(1L, ::sysconf(_SC_NPROCESSORS_CONF)));
  cpu_set_t set;
  ASSERT_EQ(::sched_getaffinity(0, sizeof set, &set), 0);
  EXPECT_EQ(n, CPU_COUNT(&set));
}

}  // namespace
}  // namespace mproc
