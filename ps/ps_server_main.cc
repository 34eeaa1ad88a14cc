// ps_server: one shard of the parameter server.
//
// Under mpirun (launched by launch/ctr-train), world ranks [0, num_servers)
// are servers; each binds an ephemeral port and the endpoints are exchanged
// with one MPI collective:
//   mpirun -np 2 ps_server --config conf/x.pbtxt --mpi : -np 2 ctr_worker ...
// Standalone, with cluster.server_endpoint listed in the config:
//   ps_server --config conf/x.pbtxt --shard 0
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/config.h"
#include "common/flags_util.h"
#include "common/model_tables.h"
#include "common/mpi_cluster.h"
#include "gflags/gflags.h"
#include "glog/logging.h"
#include "ps/ps_server.h"

DEFINE_string(config, "", "experiment file (conf/<name>.pbtxt)");
DEFINE_bool(mpi, false, "started by mpirun: rank = shard, endpoints exchanged through MPI");
DEFINE_int32(shard, -1, "standalone: this server's index into cluster.server_endpoint");
DEFINE_string(run_dir, "",
              "run directory (spilled rows go to <run_dir>/ps unless cluster.storage_dir is set)");

namespace ctrps {
namespace {

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "ps_server: %s\n", std::string(s.message()).c_str());
  return 1;
}

int Main(int argc, char** argv, const std::vector<std::string>& overrides) {
  if (FLAGS_config.empty())
    return Fail(absl::InvalidArgumentError("--config is required (see --help)"));
  auto config = LoadExperimentConfig(FLAGS_config, overrides);
  std::unique_ptr<MpiCluster> mpi;
  if (FLAGS_mpi) {
    const int servers = config.ok() ? config->cluster().num_servers() : 1;
    auto c = MpiCluster::Create(&argc, &argv, servers);
    if (!c.ok()) return Fail(c.status());
    mpi = std::move(*c);
    if (!mpi->is_server())
      return Fail(absl::InvalidArgumentError("ps_server started on a worker rank"));
  }
  if (!config.ok()) {
    // Still take part in the endpoint exchange so the workers see the failure.
    if (mpi) (void)mpi->ExchangeEndpoints(0);
    return Fail(config.status());
  }
  const ClusterConfig& cluster = config->cluster();
  PsServerOptions options;
  options.num_shards = cluster.num_servers();
  options.threads = cluster.server_threads();
  options.memory_limit_bytes = cluster.memory_limit_mb() << 20;
  options.min_free_disk_bytes = static_cast<uint64_t>(cluster.min_free_disk_mb()) << 20;
  options.spill_segment_bytes = static_cast<size_t>(cluster.spill_segment_mb()) << 20;
  options.max_request_bytes = cluster.max_request_mb() << 20;
  options.tables = ServerTables(*config);
  options.step_sync.mode = EffectiveSparseSync(config->train());
  options.step_sync.num_workers = mpi ? mpi->num_workers() : cluster.num_workers();
  options.step_sync.timeout = absl::Milliseconds(SyncTimeoutMs(*config));
  auto security = JobSecurityOf(cluster, mpi.get());
  if (!security.ok()) {
    if (mpi) (void)mpi->ExchangeEndpoints(0);
    return Fail(security.status());
  }
  options.member_token = security->secrets.member_token;
  options.chief_token = security->secrets.chief_token;
  if (security->curve) {
    options.curve_server_secret_key = security->secrets.server_secret_key;
    options.curve_client_public_key = security->secrets.client_public_key;
  }
  if (mpi) {
    options.shard = mpi->server_index();
    auto address = mpi->BindAddress();
    if (!address.ok()) {
      (void)mpi->ExchangeEndpoints(0);
      return Fail(address.status());
    }
    options.bind = absl::StrCat("tcp://", *address, ":0");
  } else {
    if (FLAGS_shard < 0 || FLAGS_shard >= cluster.server_endpoint_size()) {
      return Fail(absl::InvalidArgumentError(absl::StrCat(
          "--shard ", FLAGS_shard, ": the config lists ", cluster.server_endpoint_size(),
          " server_endpoint entries (use --mpi under mpirun)")));
    }
    options.shard = FLAGS_shard;
    // Exactly where the config says, not every interface.
    options.bind = cluster.server_endpoint(FLAGS_shard);
  }
  const std::string run_dir = FLAGS_run_dir.empty() ? "." : FLAGS_run_dir;
  std::string storage = cluster.storage_dir();
  if (storage.empty()) storage = absl::StrCat(run_dir, "/ps");
  options.storage_dir = absl::StrCat(storage, "/server-", options.shard);
  // Checkpoints are written and read only inside the job's directories.
  options.checkpoint_roots = {run_dir, storage};
  if (!config->checkpoint().dir().empty())
    options.checkpoint_roots.push_back(config->checkpoint().dir());

  PsServer server(options);
  absl::Status started = server.Start();
  int port = 0;
  if (started.ok()) {
    std::vector<std::string> parts = absl::StrSplit(server.endpoint(), ':');
    port = std::stoi(parts.back());
  }
  if (mpi) {
    auto endpoints = mpi->ExchangeEndpoints(port);
    if (!endpoints.ok() && started.ok()) started = endpoints.status();
  }
  if (!started.ok()) return Fail(started);
  LOG(INFO) << "ps_server " << options.shard << "/" << options.num_shards << ": listening on "
            << server.endpoint() << (security->curve ? " (CURVE)" : "") << ", "
            << options.tables.size() << " table(s)"
            << (options.memory_limit_bytes > 0
                    ? absl::StrCat(", memory limit ", cluster.memory_limit_mb(),
                                   " MB, spilling to ", options.storage_dir, "/spill")
                    : "");
  server.Wait();
  server.Stop();
  LOG(INFO) << "ps_server " << options.shard << ": shut down";
  return 0;
}

}  // namespace
}  // namespace ctrps

int main(int argc, char** argv) {
  std::vector<std::string> overrides = ctrps::TakeRepeatedFlag(&argc, argv, "set");
  ctrps::ParseFlags(&argc, &argv,
                    "one shard of the parameter server\n"
                    "  under mpirun:  ps_server --config conf/x.pbtxt --mpi [--run_dir DIR] [--set "
                    "field=value ...]\n"
                    "  standalone:    ps_server --config conf/x.pbtxt --shard N   "
                    "(cluster.server_endpoint lists the servers)");
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);
  return ctrps::Main(argc, argv, overrides);
}
