// The ranks of one job launched with mpirun (MPMD): world ranks
// [0, num_servers) run ps_server, the rest run ctr_worker. Owns MPI's
// lifetime (Init in Create, Finalize in the destructor).
#ifndef CTRPS_COMMON_MPI_CLUSTER_H_
#define CTRPS_COMMON_MPI_CLUSTER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/proto/config.pb.h"
#include "common/security.h"
#include "mpi.h"

namespace ctrps {

class MpiCluster {
 public:
  // MPI_Init, then checks that the world has more than num_servers ranks,
  // learns whether the ranks span hosts, and hands every rank the job's
  // secrets, drawn by world rank 0 (MPI messages only: no file, command
  // line or environment holds them). InvalidArgument when the world is too
  // small; NewJobSecrets' codes.
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
  // Whether the ranks run on more than one host (by host name).
  bool spans_hosts() const { return spans_hosts_; }
  const JobSecrets& secrets() const { return secrets_; }
  // The address a server of this job binds: 127.0.0.1 when the job runs on
  // one host; otherwise the address this host's name resolves to (the one
  // the other hosts dial, see ExchangeEndpoints). NotFound when the name
  // does not resolve.
  absl::StatusOr<std::string> BindAddress() const;

  // Collective over every rank. Servers pass the TCP port they listen on
  // (workers pass 0). Returns each server's endpoint as this rank should
  // dial it: 127.0.0.1 when the job runs on one host, else the server's
  // host name.
  absl::StatusOr<std::vector<std::string>> ExchangeEndpoints(int my_port);

 private:
  MpiCluster() = default;
  int world_rank_ = 0;
  int world_size_ = 0;
  int num_servers_ = 0;
  MPI_Comm workers_ = MPI_COMM_NULL;
  bool spans_hosts_ = false;
  JobSecrets secrets_;
};

// What a rank of a job (server or worker) secures its connections with.
struct JobSecurity {
  JobSecrets secrets;
  bool curve = false;
};
// The secrets: cluster.security.key_file's when set, else those MPI handed
// out (mpi not null). CURVE: cluster.security.curve ON or OFF; AUTO is on
// when the job spans hosts (a standalone rank counts as spanning hosts: its
// peers may be anywhere). ReadKeyFile's codes; FailedPrecondition for a
// standalone rank without a key file, or CURVE on while libzmq lacks it or
// the keys have no CURVE pairs.
absl::StatusOr<JobSecurity> JobSecurityOf(const ClusterConfig& cluster, const MpiCluster* mpi);

}  // namespace ctrps

#endif  // CTRPS_COMMON_MPI_CLUSTER_H_
