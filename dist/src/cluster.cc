// mpi_cluster() and the start-up step it brings along: linking this file (by calling
// mpi_cluster) is what makes mproc::init turn the ranks != 0 into node agents.
#include <cstdlib>
#include <memory>
#include <string>

#include "mproc/detail/init_hook.h"
#include "mproc/dist.h"
#include "mproc/errors.h"

#include "agent.h"
#include "cluster_engine.h"
#include "hub.h"
#include "link.h"

namespace mproc {
namespace {

const char* rank_variable() noexcept {
  for (const char* name : {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK"})
    if (std::getenv(name) != nullptr) return name;
  return nullptr;
}

bool in_mpi_job() noexcept {
  return std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr || rank_variable() != nullptr;
}

// A job of one rank has no agent to send work to: it is left alone, and pools run locally.
bool alone() noexcept {
  const char* size = std::getenv("OMPI_COMM_WORLD_SIZE");
  return size != nullptr && std::atoi(size) <= 1;
}

void start_rank(int /*argc*/, char** /*argv*/) {
  if (!in_mpi_job() || alone()) return;
  dist::prepare_mpi_environment();
  if (mpi_rank() != 0) dist::run_agent();
  dist::Hub::start();
}

[[maybe_unused]] const bool hook_installed = (detail::set_init_hook(&start_rank), true);

class MpiCluster : public detail::Cluster {
 public:
  MpiCluster(dist::Hub& hub, int workers) : hub_(hub), workers_(workers) {}

  std::shared_ptr<detail::Engine> make_engine(const PoolOptions& options) override {
    if (options.processes || options.initializer || options.maxtasksperchild ||
        options.max_memory_per_child || options.start_method) {
      throw ValueError(
          "a cluster pool takes no processes, initializer, maxtasksperchild, "
          "max_memory_per_child or start_method: each node's workers are started by "
          "mproc::init (set MPROC_DIST_WORKERS for their number)");
    }
    return std::make_shared<dist::ClusterEngine>(hub_, workers_);
  }

 private:
  dist::Hub& hub_;
  int workers_;
};

}  // namespace

int mpi_rank() noexcept {
  const char* name = rank_variable();
  return name == nullptr ? 0 : std::atoi(std::getenv(name));
}

std::shared_ptr<detail::Cluster> mpi_cluster() {
  if (!in_mpi_job() || alone()) return nullptr;
  dist::Hub* hub = dist::Hub::instance();
  if (hub == nullptr)
    throw ProcessError(
        "mproc::mpi_cluster() in an MPI job needs mproc::init(argc, argv) as the first line of "
        "main (it makes the ranks other than 0 serve the cluster)");
  if (hub->wait_started() <= 1) return nullptr;
  static std::shared_ptr<detail::Cluster> cluster =
      std::make_shared<MpiCluster>(*hub, hub->wait_ready(std::chrono::seconds(60)));
  return cluster;
}

}  // namespace mproc
