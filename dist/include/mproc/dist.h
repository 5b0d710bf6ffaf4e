// mproc/dist.h
//
// The same Pool across machines, on Open MPI (through Boost.MPI): `mpirun -np N ./app` starts
// the program on N ranks; rank 0 runs `main`, every other rank becomes a node agent that owns a
// local pool of its node's workers and runs the chunks rank 0 sends it.
//
//   int main(int argc, char** argv) {
//     mproc::init(argc, argv);                  // on ranks != 0 this never returns
//     mproc::Pool pool({.cluster = mproc::mpi_cluster()});
//     std::vector<int> squares = pool.map(square, std::views::iota(0, 1000));
//   }
//
// Everything of Pool works as on one machine (apply, map, imap, imap_unordered, starmap, their
// _async forms, callbacks, timeouts, cancel, close/join/terminate), with the same results and
// errors; `processes()` is the number of workers of all agents together. Work goes to the agents
// by demand: each holds at most four chunks per worker of its node that it has not answered yet,
// and gets the next one when it answers.
//
// Start-up. `mproc::init` on a rank != 0 forks the node's workers (through the pool's zygote)
// before it initializes MPI, since Open MPI does not support fork() after MPI_Init; then it
// serves until rank 0's program ends. Each agent runs cpu_count() workers, or
// $MPROC_DIST_WORKERS. Several ranks on one machine work (each has its own pool); to give one
// node's cores to one agent, map one rank per node and do not bind it to a core:
//   mpirun --map-by ppr:1:node --bind-to none -np 3 ./app      (rank 0 and two agents)
// Without an MPI environment (no OMPI_COMM_WORLD_SIZE, PMIX_RANK or PMI_RANK), or in a job of
// one rank, nothing of this happens: mpi_cluster() is null and the same program runs a local
// pool.
//
// Failures. A worker process that dies on any rank fails exactly its task, with
// WorkerLostError naming the rank, the host, the pid and the signal, and is replaced there; the
// rest of a map completes. A whole rank that dies ends the job: Open MPI 4.1 aborts every rank
// (mpirun returns non-zero). A task that is not registered in the program on an agent's node
// (a different binary) fails with NotRegisteredError, as locally.
//
// Options. A cluster pool takes no other PoolOptions (each node's workers are started by
// mproc::init, before rank 0's main runs): ValueError when one is set. `worker_pids()` is empty
// (the pids of other machines mean nothing here). Batch arguments (map over trivially copyable
// values) always travel inside the message.
//
// MPI itself belongs to mproc on every rank (rank 0's is initialized, with
// MPI_THREAD_SERIALIZED, by a thread of mproc's): the program must not call MPI. mproc's threads
// poll MPI with their own back-off, so mproc::init sets OMPI_MCA_mpi_yield_when_idle=0 (unless
// it is set already): Open MPI would otherwise yield the CPU inside every poll when the ranks
// oversubscribe the CPUs.
//
// Thread safety: as Pool. Callbacks run on the cluster's one MPI thread of rank 0. Lifetime: at
// exit rank 0 tells every agent to stop (their pools are terminated) and finalizes MPI, so
// mpirun returns 0; a cluster pool still running then fails its results with ProcessError.
#pragma once

#include <memory>

#include "mproc/pool.h"

namespace mproc {

// The cluster of this MPI job, for PoolOptions::cluster; null outside an MPI job or in a job of
// one rank (Pool then runs locally). Waits until every agent reported ready (ProcessError after
// 60 s, or when MPI could not start, or when mproc::init was not called).
[[nodiscard]] std::shared_ptr<detail::Cluster> mpi_cluster();

// This process's rank in the MPI job (from the launcher's environment, so a task running in a
// worker of an agent sees its agent's rank); 0 outside one.
[[nodiscard]] int mpi_rank() noexcept;

}  // namespace mproc
