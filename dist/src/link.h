// The MPI side of mproc::dist: one process's connection to the other ranks (Boost.MPI), used by
// exactly one thread, the one that made it (MPI_THREAD_FUNNELED).
#pragma once

#include <chrono>
#include <list>
#include <memory>
#include <string>

#include <boost/mpi/communicator.hpp>
#include <boost/mpi/environment.hpp>
#include <boost/mpi/request.hpp>

namespace mproc::dist {

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

  [[nodiscard]] int rank() const { return world_.rank(); }
  [[nodiscard]] int size() const { return world_.size(); }

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
  std::list<Outgoing> sends_;
};

// How long a thread that serves a Link waits when nothing happened: Open MPI's blocking calls
// spin, so the thread polls instead, yielding for a short while after each piece of work (a
// round trip is then fast) and sleeping longer and longer after that (an idle rank costs
// almost no CPU).
class Backoff {
 public:
  void reset() noexcept {
    idle_since_ = std::chrono::steady_clock::now();
    sleep_ = kFirst;
  }
  // Zero: yield only. Otherwise how long to sleep.
  [[nodiscard]] std::chrono::microseconds next() noexcept;

 private:
  static constexpr std::chrono::microseconds kSpin{200};
  static constexpr std::chrono::microseconds kFirst{20};
  static constexpr std::chrono::microseconds kMax{1000};
  std::chrono::steady_clock::time_point idle_since_ = std::chrono::steady_clock::now();
  std::chrono::microseconds sleep_ = kFirst;
};

}  // namespace mproc::dist
