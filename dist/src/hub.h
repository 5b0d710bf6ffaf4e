// Rank 0's side of mproc::dist: chunks go to the node agents as they have room for them (sent by
// the thread that submits them, or by the hub's thread when a credit comes back), and the hub's
// one thread polls MPI and feeds what comes back to the pools' jobs. Every cluster pool
// (ClusterEngine) of the program shares it; jobs are numbered here, so the numbers are unique
// across pools.
//
// Demand, not a split up front: an agent holds at most a few chunks per worker of its node that it
// has not answered yet (CreditWindow: 4 to 16, about a millisecond of work); each answer lets
// rank 0 send it one more. A fast node thus gets more chunks than a slow one, and no chunk waits
// on a busy node while another is idle (beyond the few each node holds in its local queue).
//
// Thread safety: every member may be called from any thread. Answers are taken by the hub's
// thread (the counterpart of the local pool's collector thread), or by a thread that waits for a
// result and polls meanwhile (help); jobs with callbacks are always delivered on the hub's thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "mproc/async_result.h"
#include "mproc/pool.h"

#include "chunk_set.h"
#include "credit_window.h"
#include "link.h"

namespace mproc::dist {

class Hub {
 public:
  // Started by mproc::init on rank 0 (its thread initializes MPI); stopped at exit, when it
  // tells every agent to stop and finalizes MPI. instance() is null before start() and on
  // other ranks.
  static void start();
  [[nodiscard]] static Hub* instance() noexcept;

  // Waits until MPI is up; the number of ranks. ProcessError if MPI could not start.
  int wait_started();
  // Waits (up to `limit`) until every agent has reported its workers; their total.
  // ProcessError when one has not by then, or when MPI could not start.
  int wait_ready(std::chrono::seconds limit);

  // A new owner number for a pool (its jobs are counted, terminated and waited for together).
  std::uint64_t new_owner();
  // Throws ProcessError once the program is ending (the hub stopped).
  std::uint64_t open_job(std::uint64_t owner, std::shared_ptr<detail::Job> job,
                         const detail::JobLimits* limits);
  // ValueError when the job is gone (terminated meanwhile).
  void submit(std::uint64_t job, std::uint32_t chunk, std::string_view message);
  void seal(std::uint64_t job) noexcept;
  // AsyncResult::cancel: a job none of whose chunks has reached an agent is dropped; one that
  // has only with `interrupt`, the agents then stopping the workers that run it.
  bool cancel(std::uint64_t job, bool interrupt);
  // Pool::terminate and terminate_workers: every job of `owner` fails, its running chunks are
  // stopped on the agents. A job none of whose chunks has started fails with `unstarted` and
  // counts as cancelled (when given), any other with `running`.
  void drop_owner(std::uint64_t owner, const std::exception_ptr& running,
                  const std::exception_ptr& unstarted);
  // Until no chunk of `owner`'s is outstanding (Pool::join after close; an imap that is still
  // being fed does not hold it up, as in the local pool).
  void wait_owner_idle(std::uint64_t owner);

  // A thread waiting for a result polls MPI itself (detail::WaitHelp), and the hub's thread sleeps
  // meanwhile: on a round trip's path, one thread spinning instead of two. help() does one round
  // of the hub's thread's work, unless another thread is at it.
  void begin_help() noexcept;
  void help();
  void end_help(bool answered) noexcept;

 private:
  struct JobEntry {
    std::shared_ptr<detail::Job> job;
    std::uint64_t owner = 0;
    detail::ChunkSet outstanding;          // submitted, not yet answered
    std::map<std::uint32_t, int> running;  // sent to an agent (chunk -> rank), not yet answered
    bool sealed = false;
    std::uint32_t submitted = 0;
    std::optional<std::chrono::nanoseconds> timeout;
    std::chrono::nanoseconds kill_grace{0};
    std::string task;
  };
  struct Pending {
    std::uint64_t job = 0;
    std::uint32_t chunk = 0;
    std::string message;  // the whole 'J' message
  };
  struct Agent {
    bool ready = false;
    std::uint32_t workers = 0;
    std::string host;
    std::uint32_t in_flight = 0;
    CreditWindow credits;
  };

  // What one round of polling found.
  struct Round {
    bool worked = false;     // messages in, or work handed over (a chunk, a kill)
    bool sending = false;    // sends still in progress
    bool in_flight = false;  // chunks at the agents, whose answers MPI wakes nobody for
    bool stop = false;
  };

  Hub() = default;
  void run();  // the hub's thread
  // Messages in, then what is ready to go out; by the holder of polling_.
  Round round(Link& link);
  // Whether the hub's thread sleeps, and for longer than a submitter lets it (kNoWakeWithin).
  [[nodiscard]] bool sleeps_long() const noexcept;
  // The hub's thread sleeps up to `pause` on wake_ (under mutex_), until `awake()`.
  template <class Awake>
  void sleep(std::unique_lock<std::mutex>& lock, std::chrono::microseconds pause, Awake&& awake);
  void stop() noexcept;  // at exit
  void on_message(const Link::Message& message);
  // An agent answered (job, chunk): its credit comes back; the job if the chunk was still
  // outstanding (each chunk is delivered or failed once), and its owner.
  // In a waiter's round (help), a job that runs callbacks is handed over to the hub's thread
  // instead (nullptr, nothing changed).
  std::shared_ptr<detail::Job> answered(const Link::Message& message, std::uint64_t job,
                                        std::uint32_t chunk, std::uint64_t& owner);
  void take(const Link::Message& message) noexcept;  // on_message, a failure logged
  void take_handed_over();                           // on the hub's thread, which holds the polling
  // After a chunk's result was delivered or failed (so that join() returns only then).
  void delivered(std::uint64_t owner, std::size_t chunks);
  // Under mutex_: sends what may be sent now (kills, then chunks by credit), from the calling
  // thread (so that a chunk leaves as soon as its submitter has written it, while the hub's
  // thread may be asleep; and so that messages leave in the order they were queued).
  void send_ready();
  // Under mutex_: one message; a failure is logged.
  void send(int rank, std::string bytes) noexcept;
  // Under mutex_: `chunks` of `owner`'s are no longer outstanding.
  void count_off(std::uint64_t owner, std::size_t chunks);
  void wake() noexcept;

  std::thread thread_;
  mutable std::mutex mutex_;
  Link* link_ = nullptr;             // the hub's thread's, while it serves (under mutex_)
  std::condition_variable changed_;  // started, an agent ready, an owner idle, stopped
  std::condition_variable wake_;     // work for the hub's thread
  bool woken_ = false;
  bool started_ = false;
  std::string failed_;  // why MPI could not start
  bool stopping_ = false;
  bool stopped_ = false;
  int size_ = 0;
  int ready_ = 0;
  std::vector<Agent> agents_;  // by rank (0 unused)
  std::uint64_t next_job_ = 1;
  std::uint64_t next_owner_ = 1;
  std::unordered_map<std::uint64_t, JobEntry> jobs_;
  std::unordered_map<std::uint64_t, std::size_t> owner_chunks_;  // outstanding, by owner
  std::deque<Pending> pending_;
  std::vector<std::pair<int, std::string>> control_;  // kills to send first

  std::atomic_flag polling_ = ATOMIC_FLAG_INIT;  // held by the thread doing a round
  Link::Message message_;                        // the polling thread's
  std::atomic<int> helpers_{0};                  // waiting threads that poll (help)
  std::deque<Link::Message> handed_over_;        // answers a helper left to this thread
  // !handed_over_.empty(), readable without mutex_: every round of the hub's thread looks, and
  // a round that takes no lock for it keeps a spinning round trip short.
  std::atomic<bool> handed_over_pending_{false};
  std::atomic<bool> in_flight_{false};  // a chunk is at an agent (under mutex_)
  // While the hub's thread sleeps: when it wakes on its own (steady_clock, ns); else 0.
  std::atomic<std::int64_t> sleeping_until_{0};
};

}  // namespace mproc::dist
