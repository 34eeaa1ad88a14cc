// The ranks of one job launched with mpirun (MPMD): world ranks
// [0, num_servers) run ps_server, the rest run ctr_worker. Owns MPI's
// lifetime (Init in Create, Finalize in the destructor).
#ifndef CTRPS_COMMON_MPI_CLUSTER_H_
#define CTRPS_COMMON_MPI_CLUSTER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "mpi.h"

namespace ctrps {

class MpiCluster {
 public:
  // MPI_Init, then checks that the world has more than num_servers ranks.
  // InvalidArgument when it does not.
  static absl::StatusOr<std::unique_ptr<MpiCluster>> Create(int* argc, char*** argv,
                                                            int num_servers);
  ~MpiCluster();

  int world_rank() const { return world_rank_; }
  int world_size() const { return world_size_; }
  int num_servers() const { return num_servers_; }
  int num_workers() const { return world_size_ - num_servers_; }
  bool is_server() const { return world_rank_ < num_servers_; }
  int server_index() const { return world_rank_; }
  int worker_index() const { return world_rank_ - num_servers_; }
  // Communicator of the workers only (MPI_COMM_NULL on servers).
  MPI_Comm workers() const { return workers_; }

  // Collective over every rank. Servers pass the TCP port they listen on
  // (workers pass 0). Returns each server's endpoint as this rank should
  // dial it: 127.0.0.1 for a server on the same host, else the server's
  // host name.
  absl::StatusOr<std::vector<std::string>> ExchangeEndpoints(int my_port);

 private:
  MpiCluster() = default;
  int world_rank_ = 0;
  int world_size_ = 0;
  int num_servers_ = 0;
  MPI_Comm workers_ = MPI_COMM_NULL;
};

}  // namespace ctrps

#endif  // CTRPS_COMMON_MPI_CLUSTER_H_
