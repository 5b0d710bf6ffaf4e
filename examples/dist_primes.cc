// Counting primes across the ranks of an MPI job: the same Pool as on one machine, with its
// workers on other ranks (and other machines). Python's counterpart, with mpi4py:
//
//   from mpi4py.futures import MPIPoolExecutor
//   with MPIPoolExecutor() as pool:                  # mpiexec -n 3 python -m mpi4py.futures ...
//       total = sum(pool.map(count_primes, ranges))
//
// Run it on one machine (rank 0 runs main, ranks 1 and 2 each run a pool of workers):
//   mpirun --oversubscribe --bind-to none -np 3 ./dist_primes 2000000
// Without mpirun it runs on a local pool.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "mproc/dist.h"
#include "mproc/mproc.h"

namespace mp = mproc;

bool is_prime(long n) {
  if (n < 2) return false;
  for (long d = 2; d * d <= n; ++d)
    if (n % d == 0) return false;
  return true;
}

// The primes in [first, last), and where they were counted ("rank 2 on node7").
std::pair<long, std::string> count_primes(long first, long last) {
  long count = 0;
  for (long n = first; n < last; ++n) count += is_prime(n) ? 1 : 0;
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  return {count, "rank " + std::to_string(mp::mpi_rank()) + " on " + host};
}
MPROC_TASK(count_primes);

int main(int argc, char** argv) {
  mp::init(argc, argv);  // on every rank but 0, this serves the cluster and never returns
  const long limit = argc > 1 ? std::atol(argv[1]) : 1000000;

  long serial = count_primes(0, limit).first;

  mp::Pool pool({.cluster = mp::mpi_cluster()});  // null outside mpirun: a local pool
  std::vector<std::pair<long, long>> ranges;
  const long step = 10000;
  for (long first = 0; first < limit; first += step)
    ranges.emplace_back(first, std::min(limit, first + step));
  long total = 0;
  std::map<std::string, int> chunks_by_place;
  for (const auto& [count, where] : pool.starmap(count_primes, ranges)) {
    total += count;
    ++chunks_by_place[where];
  }
  std::printf("primes below %ld: %ld (serial), %ld (pool)\n", limit, serial, total);
  std::printf("%d workers; ranges counted by:", pool.processes());
  for (const auto& [where, n] : chunks_by_place) std::printf(" [%s: %d]", where.c_str(), n);
  std::printf("\n");
  return total == serial ? 0 : 1;
}
