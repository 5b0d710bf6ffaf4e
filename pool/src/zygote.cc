// The zygote: a single-threaded process that forks the workers (so that no worker is ever forked
// from the pool's threaded process), reaps them, and reports every start and death on the result
// queue, where the collector thread hears of it in order with the results. Under the fork start
// method the pool forks it before it starts any thread; under forkserver and spawn it is a process
// of that method (a registered task, below) that attaches to the pool's queues and slots by name,
// so the workers it forks are copies of a clean, never-threaded program.
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <vector>

#include "mproc/log.h"
#include "mproc/start_method.h"
#include "mproc/task.h"

#include "engine.h"
#include "os_error.h"
#include "process_state.h"
#include "resource_tracker.h"
#include "wire.h"

namespace mproc::detail {
namespace {

// Dies with its parent: the kernel sends SIGKILL when the process (thread) that forked us ends.
void die_with_parent(pid_t parent) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(1);  // it already died between fork and prctl
}

struct Worker {
  std::uint32_t slot = 0;
  UniqueFd pidfd;
};

}  // namespace

void PoolEngine::zygote_main(int command_fd) {
  pid_t parent = ::getppid();
  after_fork_in_child();
  set_log_process_name("PoolZygote");
  // A zygote of the fork server is the server's child, not the pool's: it must not die with the
  // server (restarted at will). It ends at the end of its command socket instead, which comes
  // when the pool's process is gone.
  if (config_.start_method != StartMethod::forkserver) die_with_parent(parent);
  ::signal(SIGINT, SIG_IGN);  // a terminal's Ctrl-C is for the program, not for the pool
  std::map<pid_t, Worker> workers;
  // Slots whose worker took its poison pill: none is replaced (the collector replaces only the
  // others), so once every slot is done and reaped this process has nothing left to do, and
  // leaves without waiting for the pool's 'Q' (join waits for this exit).
  std::vector<bool> done(static_cast<std::size_t>(config_.processes), false);
  std::size_t done_count = 0;
  bool stopping = false;
  auto kill_all = [&] {
    for (auto& [pid, worker] : workers) ::kill(pid, SIGKILL);
  };
  auto start_worker = [&](std::uint32_t slot_index) {
    std::fflush(nullptr);
    pid_t zygote = ::getpid();
    pid_t pid = ::fork();
    if (pid == 0) {
      ::close(command_fd);
      for (auto& [other, worker] : workers) worker.pidfd.reset();
      after_fork_in_child();
      die_with_parent(zygote);
      worker_main(slot_index);
    }
    if (pid < 0) {
      int error = errno;
      report_error("the pool's zygote cannot fork a worker");
      post_result(worker_notice(kWorkerDied, slot_index, 0, error));
      return;
    }
    Worker worker{slot_index, UniqueFd(pidfd_open(pid))};
    workers.emplace(pid, std::move(worker));
    try {
      post_result(worker_notice(kWorkerStarted, slot_index, pid));
    } catch (...) {
    }
  };
  // The first workers at once, not on a command ('S' is for replacements): they start while the
  // pool's process is still starting its collector thread.
  for (int i = 0; i < config_.processes; ++i) start_worker(static_cast<std::uint32_t>(i));
  for (;;) {
    std::vector<pollfd> fds;
    std::vector<pid_t> pids;
    if (!stopping) fds.push_back({command_fd, POLLIN, 0});
    for (auto& [pid, worker] : workers) {
      fds.push_back({worker.pidfd.get(), POLLIN, 0});
      pids.push_back(pid);
    }
    if (fds.empty()) break;  // stopping, and every worker is reaped
    if (retry_on_eintr([&] { return ::poll(fds.data(), fds.size(), -1); }) < 0) break;
    std::size_t first_worker = stopping ? 0 : 1;
    for (std::size_t i = first_worker; i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      pid_t pid = pids[i - first_worker];
      int status = 0;
      if (retry_on_eintr([&] { return ::waitpid(pid, &status, 0); }) != pid) continue;
      std::uint32_t slot_index = workers[pid].slot;
      workers.erase(pid);
      if (slot_index < done.size() && !done[slot_index] &&
          slot(slot_index).state.load(std::memory_order_acquire) == WorkerSlot::kPill) {
        done[slot_index] = true;
        ++done_count;
      }
      // The notice first: the pool may be waiting for it (join), and this process's own exit,
      // which join also waits for, comes after the clean-up anyway.
      if (!stopping) {
        try {
          post_result(worker_notice(kWorkerDied, slot_index, pid, status));
        } catch (...) {
        }
      }
      remove_segments_of_exited(pid);  // workers leave by _exit
    }
    if (!stopping && done_count == done.size() && workers.empty()) break;
    if (stopping || fds[0].revents == 0) continue;
    char command[5];
    ssize_t n = retry_on_eintr([&] { return ::recv(command_fd, command, sizeof command, 0); });
    // 'Q': the pool is joined (its workers have left); 'K': it terminates; EOF: its process is
    // gone (PR_SET_PDEATHSIG normally comes first).
    if (n <= 0 || command[0] == 'K' || command[0] == 'Q') {
      stopping = true;
      kill_all();
      continue;
    }
    if (n != sizeof command || command[0] != 'S') continue;
    std::uint32_t slot_index = 0;
    std::memcpy(&slot_index, command + 1, 4);
    start_worker(slot_index);
  }
  ::_exit(0);
}

PoolEngine::PoolEngine(const ZygoteStart& start)
    : tasks_(ByteQueue::attach(start.tasks)),
      results_(ByteQueue::attach(start.results)),
      slots_(SharedSegment::attach(start.slots)),
      creator_(start.creator) {
  config_.processes = start.processes;
  config_.maxtasksperchild = start.maxtasksperchild;
  config_.max_memory_per_child = start.max_memory_per_child;
  config_.start_method = static_cast<StartMethod>(start.start_method);
  config_.driven = start.driven;
  if (start.initializer) config_.initializer = *start.initializer;
}

// What a zygote started by spawn or the fork server runs.
void run_pool_zygote(ZygoteStart& start) {
  auto engine = std::make_shared<PoolEngine>(start);
  engine->zygote_main(start.commands.release());
}

void PoolEngine::start_zygote_by_name(UniqueFd commands) {
  ZygoteStart start;
  start.tasks = tasks_.name();
  start.results = results_.name();
  start.slots = slots_.name();
  start.processes = config_.processes;
  start.maxtasksperchild = config_.maxtasksperchild;
  start.max_memory_per_child = config_.max_memory_per_child;
  start.creator = creator_;
  start.start_method = static_cast<std::uint8_t>(config_.start_method);
  start.driven = config_.driven;
  if (config_.initializer) start.initializer = *config_.initializer.target<TaskCall>();
  start.commands = Connection(commands.release());
  // A daemon: the fork server ends it if this process dies before the command socket says so.
  zygote_process_.emplace(
      ProcessOptions{.name = "PoolZygote", .daemon = true, .start_method = config_.start_method},
      run_pool_zygote, std::move(start));
  zygote_process_->start();
  zygote_ = zygote_process_->pid();
  get_logger()->debug("pool zygote started by {}: pid {}", to_string(config_.start_method),
                      zygote_);
}

}  // namespace mproc::detail

MPROC_TASK(mproc::detail::run_pool_zygote);
