#include "common/mpi_cluster.h"

#include <unistd.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace ctrps {
namespace {
constexpr int kHostLen = 256;
}  // namespace

absl::StatusOr<std::unique_ptr<MpiCluster>> MpiCluster::Create(int* argc, char*** argv,
                                                               int num_servers) {
  int provided = 0;
  // Workers call MPI from the training thread only.
  MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
  std::unique_ptr<MpiCluster> c(new MpiCluster());
  MPI_Comm_rank(MPI_COMM_WORLD, &c->world_rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &c->world_size_);
  c->num_servers_ = num_servers;
  if (c->world_size_ <= num_servers) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "mpirun started %d ranks but the job needs %d servers and at least one worker",
        c->world_size_, num_servers));
  }
  MPI_Comm_split(MPI_COMM_WORLD, c->is_server() ? MPI_UNDEFINED : 0, c->world_rank_, &c->workers_);
  return c;
}

MpiCluster::~MpiCluster() {
  if (workers_ != MPI_COMM_NULL) MPI_Comm_free(&workers_);
  MPI_Finalize();
}

absl::StatusOr<std::vector<std::string>> MpiCluster::ExchangeEndpoints(int my_port) {
  char host[kHostLen] = {0};
  gethostname(host, kHostLen - 1);
  std::vector<char> hosts(static_cast<size_t>(kHostLen) * world_size_);
  std::vector<int> ports(world_size_);
  MPI_Allgather(host, kHostLen, MPI_CHAR, hosts.data(), kHostLen, MPI_CHAR, MPI_COMM_WORLD);
  MPI_Allgather(&my_port, 1, MPI_INT, ports.data(), 1, MPI_INT, MPI_COMM_WORLD);
  std::vector<std::string> endpoints;
  for (int r = 0; r < num_servers_; ++r) {
    std::string server_host(&hosts[static_cast<size_t>(r) * kHostLen]);
    if (ports[r] <= 0) {
      return absl::UnavailableError(
          absl::StrCat("server ", r, " on ", server_host, " did not start"));
    }
    const bool local = server_host == host;
    endpoints.push_back(absl::StrCat("tcp://", local ? "127.0.0.1" : server_host, ":", ports[r]));
  }
  return endpoints;
}

}  // namespace ctrps
