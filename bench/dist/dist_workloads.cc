// mproc's cluster Pool across MPI ranks against mpi4py.futures (bench/python/dist_workloads.py),
// and the machine's reference, a Boost.MPI ping-pong. One workload per run, printed as one JSON
// line {"workload", "value", "unit"} (bench/compare runs them; --scale F multiplies the counts):
//
//   mpirun --oversubscribe --bind-to none -np 3 mproc_dist_workloads
//       dist_apply_async_roundtrip_latency [--scale F]
//   mpirun --oversubscribe --bind-to none -np 3 mproc_dist_workloads dist_apply_async_throughput
//   mpirun --oversubscribe --bind-to none -np 3 mproc_dist_workloads boost_mpi_pingpong_latency
//
// The ping-pong uses ranks 0 and 1 only; bench/compare runs it on the rows' 3 ranks, so that
// Open MPI waits the same way (3 ranks on 2 CPUs: it yields instead of spinning).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <boost/mpi/communicator.hpp>
#include <boost/mpi/environment.hpp>

#include "mproc/dist.h"
#include "mproc/mproc.h"

namespace {

int echo(int x) { return x; }

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// The count n times the --scale factor, at least `floor` (a smoke run still measures something).
int scaled(int n, double scale, int floor) {
  return std::max(floor, static_cast<int>(static_cast<double>(n) * scale));
}

void print(const char* workload, double value, const char* unit) {
  std::printf("{\"workload\": \"%s\", \"value\": %.3f, \"unit\": \"%s\"}\n", workload, value, unit);
}

// Rank 0 and 1 bounce an int; blocking Boost.MPI calls (which poll): the floor of a round trip
// between two ranks of this machine. Two polling ranks on a shared machine lose whole time
// slices now and then, so the rounds run in blocks and the median block is reported.
int pingpong(double scale) {
  boost::mpi::environment env;
  boost::mpi::communicator world;
  constexpr int kBlocks = 21;
  const int per_block = scaled(1000, scale, 100);
  int value = 0;
  auto bounce = [&] {
    if (world.rank() == 0) {
      world.send(1, 0, value);
      world.recv(1, 0, value);
    } else if (world.rank() == 1) {
      world.recv(0, 0, value);
      world.send(0, 0, value + 1);
    }
  };
  for (int i = 0; i < 1000; ++i) bounce();  // warm up
  std::vector<double> block_us;
  for (int b = 0; b < kBlocks; ++b) {
    const auto start = Clock::now();
    for (int i = 0; i < per_block; ++i) bounce();
    block_us.push_back(seconds_since(start) / per_block * 1e6);
  }
  std::nth_element(block_us.begin(), block_us.begin() + kBlocks / 2, block_us.end());
  if (world.rank() == 0) print("boost_mpi_pingpong_latency", block_us[kBlocks / 2], "us");
  return 0;
}

}  // namespace

MPROC_TASK(echo);

int main(int argc, char** argv) {
  const std::string workload = argc > 1 ? argv[1] : "";
  double scale = 1.0;
  if (argc > 3 && std::string(argv[2]) == "--scale") scale = std::atof(argv[3]);
  if (!(scale > 0)) scale = 1.0;
  if (workload == "boost_mpi_pingpong_latency") return pingpong(scale);  // no mproc at all
  mproc::init(argc, argv);
  mproc::Pool pool({.cluster = mproc::mpi_cluster()});
  for (int i = 0; i < 500; ++i) (void)pool.apply_async(echo, i).get();  // warm up
  if (workload == "dist_apply_async_roundtrip_latency") {
    const int rounds = scaled(5000, scale, 200);
    auto start = Clock::now();
    for (int i = 0; i < rounds; ++i) (void)pool.apply_async(echo, i).get();
    print(workload.c_str(), seconds_since(start) / rounds * 1e6, "us");
  } else if (workload == "dist_apply_async_throughput") {
    const int tasks = scaled(50000, scale, 2000);
    std::vector<mproc::AsyncResult<int>> results;
    results.reserve(static_cast<std::size_t>(tasks));
    auto start = Clock::now();
    for (int i = 0; i < tasks; ++i) results.push_back(pool.apply_async(echo, i));
    for (auto& r : results) (void)r.get();
    print(workload.c_str(), tasks / seconds_since(start), "tasks/s");
  } else {
    std::fprintf(stderr,
                 "usage: %s dist_apply_async_roundtrip_latency|dist_apply_async_throughput|"
                 "boost_mpi_pingpong_latency [--scale F]\n",
                 argv[0]);
    return 2;
  }
  return 0;
}
