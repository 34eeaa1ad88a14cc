// checkpoint_bench: time to checkpoint and restore a table, full and
// incremental, and the export size in fp32 and fp16.
//
//   checkpoint_bench --rows 10000000 [--dim 16] [--changed 0.01] [--dir /tmp/ckpt_bench]
//                    [--memory_limit_mb 0] [--export]
//
// One in-process server with Adagrad rows: fill, full checkpoint, change a
// fraction of the rows, incremental checkpoint, restore the latter into a
// fresh server, export it (fp32, fp16). With --memory_limit_mb, most rows
// live in the spill logs while they are checkpointed.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>

#include "absl/strings/str_format.h"
#include "common/checkpoint_manifest.h"
#include "common/flags_util.h"
#include "common/hash.h"
#include "gflags/gflags.h"
#include "ps/ps_server.h"
#include "worker/export.h"
#include "worker/nn/models/ctr_model.h"

DEFINE_int64(rows, 1000000, "rows in the table");
DEFINE_int32(dim, 16, "embedding dim");
DEFINE_double(changed, 0.01, "fraction of rows changed before the incremental checkpoint");
DEFINE_string(dir, "/tmp/checkpoint_bench", "scratch directory (removed first)");
DEFINE_int64(memory_limit_mb, 0, "the server's memory limit (0: none); rows past it spill to disk");
DEFINE_bool(export, true, "also export the restored checkpoint (fp32 and fp16)");

namespace ctrps {
namespace {

using Clock = std::chrono::steady_clock;
double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// One SAVE or LOAD handled in-process, as the server's IO thread would.
ReplyHeader Call(PsServer& server, Op op, const std::string& path) {
  RequestHeader h;
  h.set_op(op);
  h.set_path(path);
  std::vector<zmq::message_t> req, rep;
  req.emplace_back(h.SerializeAsString());
  bool shutdown = false;
  server.Handle(req, &rep, &shutdown);
  ReplyHeader reply;
  reply.ParseFromArray(rep[0].data(), rep[0].size());
  return reply;
}

uint64_t DirBytes(const std::string& dir) {
  uint64_t bytes = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir, ec)) {
    if (e.is_regular_file()) bytes += e.file_size();
  }
  return bytes;
}

int Main() {
  std::filesystem::remove_all(FLAGS_dir);
  ExperimentConfig config;
  TableConfig* t = config.add_table();
  t->set_name("emb");
  t->set_dim(FLAGS_dim);
  t->mutable_optimizer()->set_kind(SparseOptimizerConfig::ADAGRAD);
  config.mutable_model()->set_type(ModelConfig::DNN);
  config.mutable_model()->add_hidden_units(16);
  FeatureConfig* f = config.mutable_data()->add_feature();
  f->set_name("emb");
  f->set_table("emb");
  PsServerOptions o;
  o.tables.push_back(*t);
  o.storage_dir = FLAGS_dir + "/store-a";
  o.memory_limit_bytes = FLAGS_memory_limit_mb << 20;
  auto server = std::make_unique<PsServer>(o);
  if (!server->Start().ok()) return 1;
  SparseTable* table = server->table("emb");
  const int chunk = 100000;
  std::vector<uint64_t> keys(chunk);
  std::vector<float> grads(static_cast<size_t>(chunk) * FLAGS_dim, 0.01f);
  auto fill_start = Clock::now();
  for (int64_t r = 0; r < FLAGS_rows; r += chunk) {
    const int n = static_cast<int>(std::min<int64_t>(chunk, FLAGS_rows - r));
    for (int i = 0; i < n; ++i) keys[i] = Mix64(r + i);
    if (absl::Status s =
            table->Push({keys.data(), static_cast<size_t>(n)}, grads.data(), nullptr, 1);
        !s.ok()) {
      std::fprintf(stderr, "checkpoint_bench: fill: %s\n", s.ToString().c_str());
      return 1;
    }
    if (r % 10000000 == 0 && r > 0) {
      std::printf("  filled %lld / %lld rows\n", static_cast<long long>(r),
                  static_cast<long long>(FLAGS_rows));
      std::fflush(stdout);
    }
  }
  const TableStats filled = table->Stats();
  std::printf(
      "checkpoint_bench: %lld rows, dim %d, Adagrad; filled in %.1f s; %llu rows in memory, %llu "
      "on disk\n",
      static_cast<long long>(FLAGS_rows), FLAGS_dim, Since(fill_start),
      static_cast<unsigned long long>(filled.rows_in_memory()),
      static_cast<unsigned long long>(filled.rows_on_disk()));
  std::fflush(stdout);

  auto save = [&](const std::string& dir, uint64_t* rows) -> double {
    auto start = Clock::now();
    const ReplyHeader reply = Call(*server, OP_SAVE, dir + "/server-0");
    if (reply.code() != 0) std::printf("save failed: %s\n", reply.message().c_str());
    *rows = reply.rows();
    CheckpointManifest m;
    m.set_num_servers(1);
    *m.mutable_config() = config;
    CheckpointTable* ct = m.add_table();
    ct->set_name("emb");
    ct->set_id(0);
    ct->set_dim(FLAGS_dim);
    ct->set_state_dim(FLAGS_dim);
    // A dense part the exporter can copy (a tiny DNN).
    auto model = nn::CreateModel(config.model(), 1, FLAGS_dim, 1);
    std::string dense(reinterpret_cast<const char*>((*model)->params().values().data()),
                      (*model)->params().values().size_bytes());
    (void)WriteFileAtomically(dir + "/dense.bin", dense);
    m.set_dense_values((*model)->params().values().size());
    m.set_dense_buffers((*model)->params().buffers().size());
    (void)WriteCheckpointManifest(dir, m);
    return Since(start);
  };
  uint64_t full_rows = 0, inc_rows = 0;
  const double full = save(FLAGS_dir + "/ckpt-1", &full_rows);
  // Change a fraction of the rows.
  const int64_t changed = static_cast<int64_t>(FLAGS_rows * FLAGS_changed);
  std::mt19937_64 rng(1);
  for (int64_t done = 0; done < changed; done += chunk) {
    const int n = static_cast<int>(std::min<int64_t>(chunk, changed - done));
    for (int i = 0; i < n; ++i) keys[i] = Mix64(rng() % FLAGS_rows);
    (void)table->Push({keys.data(), static_cast<size_t>(n)}, grads.data(), nullptr, 2);
  }
  const double inc = save(FLAGS_dir + "/ckpt-2", &inc_rows);
  std::printf("%-34s %10s %12s %10s\n", "", "seconds", "rows written", "MB on disk");
  std::printf("%-34s %10.2f %12llu %10.0f\n", "full checkpoint", full,
              static_cast<unsigned long long>(full_rows), DirBytes(FLAGS_dir + "/ckpt-1") / 1e6);
  std::printf("%-34s %10.2f %12llu %10.0f\n",
              absl::StrFormat("incremental (%.0f%% changed)", FLAGS_changed * 100).c_str(), inc,
              static_cast<unsigned long long>(inc_rows), DirBytes(FLAGS_dir + "/ckpt-2") / 1e6);
  server.reset();

  PsServerOptions o2 = o;
  o2.storage_dir = FLAGS_dir + "/store-b";
  PsServer fresh(o2);
  if (!fresh.Start().ok()) return 1;
  auto start = Clock::now();
  const ReplyHeader reply = Call(fresh, OP_LOAD, FLAGS_dir + "/ckpt-2");
  std::printf("%-34s %10.2f %12llu\n", "restore (load + re-shard scan)", Since(start),
              static_cast<unsigned long long>(reply.rows()));
  for (bool fp16 : {false, true}) {
    if (!FLAGS_export) break;
    start = Clock::now();
    const std::string out = FLAGS_dir + (fp16 ? "/export16" : "/export32");
    auto m = ExportFromCheckpoint(FLAGS_dir + "/ckpt-2", out, fp16, 0);
    if (!m.ok()) {
      std::printf("export failed: %s\n", m.status().ToString().c_str());
      return 1;
    }
    std::printf("%-34s %10.2f %12llu %10.0f\n", fp16 ? "export fp16" : "export fp32", Since(start),
                static_cast<unsigned long long>(m->table(0).rows()), DirBytes(out) / 1e6);
  }
  std::filesystem::remove_all(FLAGS_dir);
  return 0;
}

}  // namespace
}  // namespace ctrps

int main(int argc, char** argv) {
  ctrps::ParseFlags(
      &argc, &argv,
      "checkpoint and restore times of one table\n  checkpoint_bench --rows 10000000");
  return ctrps::Main();
}
