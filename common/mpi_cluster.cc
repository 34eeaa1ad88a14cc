#include "common/mpi_cluster.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status.h"

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
  char host[kHostLen] = {0};
  gethostname(host, kHostLen - 1);
  std::vector<char> hosts(static_cast<size_t>(kHostLen) * c->world_size_);
  MPI_Allgather(host, kHostLen, MPI_CHAR, hosts.data(), kHostLen, MPI_CHAR, MPI_COMM_WORLD);
  for (int r = 0; r < c->world_size_; ++r) {
    if (std::strncmp(&hosts[static_cast<size_t>(r) * kHostLen], host, kHostLen) != 0)
      c->spans_hosts_ = true;
  }
  // Rank 0 draws the secrets; an empty text tells the others it failed.
  std::string text;
  absl::Status drawn = absl::OkStatus();
  if (c->world_rank_ == 0) {
    auto secrets = NewJobSecrets();
    drawn = secrets.status();
    if (secrets.ok()) text = SerializeJobSecrets(*secrets);
  }
  int len = static_cast<int>(text.size());
  MPI_Bcast(&len, 1, MPI_INT, 0, MPI_COMM_WORLD);
  text.resize(len);
  MPI_Bcast(text.data(), len, MPI_CHAR, 0, MPI_COMM_WORLD);
  if (!drawn.ok()) return drawn;
  if (len == 0) return absl::InternalError("rank 0 could not draw the job's secrets");
  auto secrets = ParseJobSecrets(text);
  if (!secrets.ok()) return secrets.status();
  c->secrets_ = std::move(*secrets);
  return c;
}

absl::StatusOr<std::string> MpiCluster::BindAddress() const {
  if (!spans_hosts_) return std::string("127.0.0.1");
  char host[kHostLen] = {0};
  gethostname(host, kHostLen - 1);
  addrinfo hints = {};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (int e = getaddrinfo(host, nullptr, &hints, &found); e != 0 || found == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("host name ", host, " does not resolve to an address: ", gai_strerror(e)));
  }
  char addr[INET_ADDRSTRLEN] = {0};
  inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(found->ai_addr)->sin_addr, addr, sizeof(addr));
  freeaddrinfo(found);
  return std::string(addr);
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
    // A job on several hosts binds its servers to the host's address, not
    // loopback (BindAddress), so even a local server is dialled by name.
    const bool local = server_host == host && !spans_hosts_;
    endpoints.push_back(absl::StrCat("tcp://", local ? "127.0.0.1" : server_host, ":", ports[r]));
  }
  return endpoints;
}

absl::StatusOr<JobSecurity> JobSecurityOf(const ClusterConfig& cluster, const MpiCluster* mpi) {
  const SecurityConfig& sec = cluster.security();
  JobSecurity out;
  if (!sec.key_file().empty()) {
    ASSIGN_OR_RETURN(out.secrets, ReadKeyFile(sec.key_file()));
  } else if (mpi != nullptr) {
    out.secrets = mpi->secrets();
  } else {
    return absl::FailedPreconditionError(
        "cluster.security.key_file is needed outside mpirun: make one with `ctr-keygen FILE` and "
        "give the same file to the servers and workers");
  }
  switch (sec.curve()) {
    case SecurityConfig::ON:
      out.curve = true;
      break;
    case SecurityConfig::OFF:
      out.curve = false;
      break;
    default:
      out.curve = mpi == nullptr || mpi->spans_hosts();
  }
  if (out.curve && !CurveAvailable()) {
    return absl::FailedPreconditionError(
        "cluster.security.curve: CURVE is needed but this libzmq was built without it");
  }
  if (out.curve && !out.secrets.has_curve_keys()) {
    return absl::FailedPreconditionError(
        "cluster.security.curve: CURVE is on but the job's keys have no CURVE key pairs");
  }
  return out;
}

}  // namespace ctrps
