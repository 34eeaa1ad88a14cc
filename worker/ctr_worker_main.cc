// ctr_worker: one training worker. Started by launch/ctr-train under mpirun
// (world ranks after the servers'); standalone with cluster.server_endpoint
// listed in the config for a single worker.
//   mpirun -np S ps_server --config C --mpi : -np W ctr_worker --config C --mpi --run_dir DIR
//   ctr_worker --config C --run_dir DIR        (static endpoints, one worker)
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "common/config.h"
#include "common/flags_util.h"
#include "common/mpi_cluster.h"
#include "gflags/gflags.h"
#include "worker/ps_client.h"
#include "worker/trainer.h"

extern "C" void openblas_set_num_threads(int);

DEFINE_string(config, "", "experiment file (conf/<name>.pbtxt)");
DEFINE_bool(mpi, false, "started by mpirun after the servers");
DEFINE_string(run_dir, "",
              "run directory for logs, metrics and checkpoints (default runs/<config name>)");
DEFINE_bool(shutdown_servers, true, "ask the servers to exit when training ends");
DEFINE_bool(resume, false, "continue from the newest complete checkpoint");
DEFINE_string(resume_from, "", "continue from this checkpoint directory");
DEFINE_bool(print_cluster, false,
            "print \"num_servers num_workers\" from the config and exit (for the launcher)");

namespace ctrps {
namespace {

int Fail(int rank, const absl::Status& s) {
  std::fprintf(stderr, "ctr_worker %d: %s\n", rank, std::string(s.message()).c_str());
  std::fflush(stderr);
  return 1;
}

int Main(int argc, char** argv, const std::vector<std::string>& overrides) {
  if (FLAGS_config.empty())
    return Fail(0, absl::InvalidArgumentError("--config is required (see --help)"));
  auto config = LoadExperimentConfig(FLAGS_config, overrides);
  if (FLAGS_print_cluster) {
    if (!config.ok()) return Fail(0, config.status());
    std::printf("%d %d\n", config->cluster().num_servers(), config->cluster().num_workers());
    return 0;
  }
  // One BLAS thread per rank: ranks already share the cores.
  openblas_set_num_threads(1);
  std::unique_ptr<MpiCluster> mpi;
  int rank = 0, workers = 1;
  std::vector<std::string> endpoints;
  if (FLAGS_mpi) {
    const int servers = config.ok() ? config->cluster().num_servers() : 1;
    auto c = MpiCluster::Create(&argc, &argv, servers);
    if (!c.ok()) return Fail(0, c.status());
    mpi = std::move(*c);
    rank = mpi->worker_index();
    workers = mpi->num_workers();
    auto eps = mpi->ExchangeEndpoints(0);
    if (!config.ok()) return Fail(rank, config.status());
    if (!eps.ok()) return Fail(rank, eps.status());
    endpoints = *eps;
  } else {
    if (!config.ok()) return Fail(0, config.status());
    endpoints.assign(config->cluster().server_endpoint().begin(),
                     config->cluster().server_endpoint().end());
    if (endpoints.empty()) {
      return Fail(0, absl::InvalidArgumentError("no cluster.server_endpoint in the config: run "
                                                "under launch/ctr-train, or list the servers"));
    }
  }
  auto security = JobSecurityOf(config->cluster(), mpi.get());
  if (!security.ok()) {
    Fail(rank, security.status());
    if (mpi) MPI_Abort(MPI_COMM_WORLD, 1);
    return 1;
  }
  PsClientOptions co;
  co.endpoints = endpoints;
  // The chief alone holds the secret that may stop, save and load the
  // servers.
  co.auth_token = rank == 0 ? security->secrets.chief_token : security->secrets.member_token;
  if (security->curve) {
    co.curve_server_public_key = security->secrets.server_public_key;
    co.curve_public_key = security->secrets.client_public_key;
    co.curve_secret_key = security->secrets.client_secret_key;
  }
  co.timeout = absl::Milliseconds(config->cluster().request_timeout_ms());
  co.shared_memory_bytes = static_cast<size_t>(config->cluster().shared_memory_mb()) << 20;
  auto client = PsClient::Connect(co);
  if (!client.ok()) return Fail(rank, client.status());

  TrainerOptions to;
  to.config = *config;
  to.run_dir = FLAGS_run_dir.empty() ? absl::StrCat("runs/", config->name()) : FLAGS_run_dir;
  to.worker_index = rank;
  to.num_workers = workers;
  to.comm = mpi ? mpi->workers() : MPI_COMM_NULL;
  to.client = client->get();
  to.resume = FLAGS_resume;
  to.resume_from = FLAGS_resume_from;
  auto trainer = Trainer::Create(to);
  absl::Status status = trainer.ok() ? trainer->get()->Run().status() : trainer.status();
  if (!status.ok()) {
    Fail(rank, status);
    // Other ranks may be blocked in a collective: end the whole job.
    if (mpi) MPI_Abort(MPI_COMM_WORLD, 1);
    return 1;
  }
  trainer->reset();
  if (mpi) MPI_Barrier(mpi->workers());
  if (rank == 0 && FLAGS_shutdown_servers) {
    absl::Status s = (*client)->Shutdown();
    if (!s.ok()) Fail(rank, s);
  }
  return 0;
}

}  // namespace
}  // namespace ctrps

int main(int argc, char** argv) {
  std::vector<std::string> overrides = ctrps::TakeRepeatedFlag(&argc, argv, "set");
  ctrps::ParseFlags(
      &argc, &argv,
      "one training worker (normally started by launch/ctr-train)\n"
      "  ctr_worker --config conf/x.pbtxt --mpi [--run_dir DIR] [--set field=value ...]");
  return ctrps::Main(argc, argv, overrides);
}
