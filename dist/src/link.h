// The MPI side of mproc::dist: one process's connection to the other ranks (Boost.MPI). MPI runs
// with MPI_THREAD_SERIALIZED and every member takes the Link's mutex, so any thread may use it:
// a thread with something to send sends it itself instead of waking the thread that polls (a
// wake-up costs more than a whole round trip between ranks).
#pragma once

#include <atomic>
#include <chrono>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <boost/mpi/communicator.hpp>
#include <boost/mpi/environment.hpp>
#include <boost/mpi/request.hpp>

namespace mproc::dist {

// What mproc::init does on every rank of a job before MPI starts (the process has one thread
// then): Open MPI is told not to give the CPU away inside each call that finds nothing to do,
// as it would by default when the ranks oversubscribe the CPUs. The threads that serve a Link
// poll with their own back-off (Backoff), and they hold the Link's lock while they poll: a yield
// inside each poll made every send from another thread wait for a time slice (a round trip
// ~45 us instead of ~30 us with 3 ranks on 2 CPUs). An OMPI_MCA_mpi_yield_when_idle that is
// set already is left as it is.
void prepare_mpi_environment() noexcept;

// The Link's lock. Its holder never waits (an MPI call that does not block), while a thread that
// polls holds it most of the time: a sender that slept in a mutex would cost a wake-up, more
// than the call it waits for, so it spins, yielding the CPU.
class SpinLock {
 public:
  void lock() noexcept;
  void unlock() noexcept { held_.clear(std::memory_order_release); }

 private:
  std::atomic_flag held_ = ATOMIC_FLAG_INIT;
};

class Link {
 public:
  struct Message {
    int source = 0;
    std::string bytes;
  };

  // MPI_Init_thread; the destructor finalizes (after every send has completed).
  Link();
  ~Link();
  Link(const Link&) = delete;
  Link& operator=(const Link&) = delete;

  [[nodiscard]] int rank() const noexcept { return rank_; }
  [[nodiscard]] int size() const noexcept { return size_; }

  // A message that has arrived, taken (iprobe, then recv): false when none has.
  bool poll(Message& out);
  // Sends without blocking (isend): the bytes stay here until the send completes, so two ranks
  // sending large messages to each other never wait on each other.
  void send(int dest, std::string bytes);
  // Completes what it can of the sends; returns whether some are still in progress.
  bool progress();
  // Until every send has completed.
  void flush();

 private:
  struct Outgoing {
    std::unique_ptr<std::string> bytes;
    boost::mpi::request request;
  };
  boost::mpi::environment environment_;
  boost::mpi::communicator world_;
  int rank_ = 0;
  int size_ = 0;
  SpinLock mutex_;  // one MPI call at a time
  std::list<Outgoing> sends_;
};

// How long a thread that serves a Link waits when nothing happened: Open MPI's blocking calls
// spin, so the thread polls instead, yielding for a short while after each piece of work (a
// round trip is then fast) and sleeping longer and longer after that (an idle rank costs
// almost no CPU).
class Backoff {
 public:
  // Made by the thread that serves: its sleeps end on time from then on (a timer slack of 1 us
  // instead of Linux's 50 us, which made a 20 us nap last 70).
  Backoff() noexcept;

  // The end of a round of a serving loop: straight on to the next when the round `worked`;
  // else a yield while sends are in progress (`sending`) or shortly after the last work, and
  // otherwise sleep(pause), for longer and longer (sleep returns early when woken). While
  // answers are `due` by MPI, which wakes nobody, the sleeps stay short: the answer to a chunk
  // that runs long is seen within ~kMaxDue, not ~kMax.
  template <class Sleep>
  void after_round(bool worked, bool sending, bool due, Sleep&& sleep) {
    if (worked) {
      idle_since_ = std::chrono::steady_clock::now();
      sleep_ = kFirst;
      return;
    }
    const std::chrono::microseconds pause = sending ? std::chrono::microseconds(0) : next(due);
    if (pause.count() == 0) {
      std::this_thread::yield();
    } else {
      sleep(pause);
    }
  }

 private:
  // Zero: yield only. Otherwise how long to sleep.
  [[nodiscard]] std::chrono::microseconds next(bool due) noexcept;

  static constexpr std::chrono::microseconds kSpin{200};
  static constexpr std::chrono::microseconds kFirst{20};
  static constexpr std::chrono::microseconds kMaxDue{80};
  static constexpr std::chrono::microseconds kMax{1000};
  std::chrono::steady_clock::time_point idle_since_ = std::chrono::steady_clock::now();
  std::chrono::microseconds sleep_ = kFirst;
};

}  // namespace mproc::dist
