// ctr-export: turns a training checkpoint into an export for serving
// (worker/export.h): the model config, dense weights and embedding rows, in
// files the predictor (ctr-predict, worker/predictor.h) opens without a PS.
//   ctr-export runs/frappe/checkpoints/ckpt-12000 runs/frappe/export
//   ctr-export runs/frappe/checkpoints runs/frappe/export --fp16 --min_count 2
#include <cstdio>
#include <filesystem>
#include <string>

#include "absl/strings/str_format.h"
#include "common/checkpoint_manifest.h"
#include "common/flags_util.h"
#include "gflags/gflags.h"
#include "worker/export.h"

DEFINE_bool(fp16, false,
            "store embedding values as IEEE half floats (round to nearest even): half the size, "
            "scores within about 1e-3 of f32");
DEFINE_uint32(min_count, 0,
              "drop rows whose key was pushed fewer than this many times; a dropped key then "
              "reads zeros (0 = keep every row)");

namespace ctrps {
namespace {

namespace fs = std::filesystem;

int Fail(const std::string& message) {
  std::fprintf(stderr, "ctr-export: %s\n", message.c_str());
  return 1;
}

uint64_t BytesUnder(const std::string& dir) {
  uint64_t bytes = 0;
  std::error_code ec;
  for (const auto& e : fs::recursive_directory_iterator(dir, ec)) {
    if (e.is_regular_file(ec)) bytes += e.file_size(ec);
  }
  return bytes;
}

std::string HumanBytes(uint64_t bytes) {
  if (bytes < (1 << 20)) return absl::StrFormat("%.1f KiB", bytes / 1024.0);
  if (bytes < (1ull << 30)) return absl::StrFormat("%.1f MiB", bytes / 1048576.0);
  return absl::StrFormat("%.2f GiB", bytes / 1073741824.0);
}

int Main(const std::string& checkpoint_arg, const std::string& out) {
  // A checkpoint root (checkpoint.dir) stands for its newest complete checkpoint.
  std::string checkpoint = checkpoint_arg;
  if (!fs::exists(fs::path(checkpoint) / kManifestName)) {
    std::vector<std::string> all = ListCheckpoints(checkpoint);
    if (!all.empty()) checkpoint = all[0];
  }
  auto manifest = ExportFromCheckpoint(checkpoint, out, FLAGS_fp16, FLAGS_min_count);
  if (!manifest.ok()) return Fail(manifest.status().ToString());
  std::printf("ctr-export: %s -> %s: %s (%s, min_count %u, step %llu)\n", checkpoint.c_str(),
              out.c_str(), HumanBytes(BytesUnder(out)).c_str(), FLAGS_fp16 ? "fp16" : "fp32",
              FLAGS_min_count, static_cast<unsigned long long>(manifest->global_step()));
  uint64_t total = 0;
  for (const ExportTable& t : manifest->table()) {
    std::printf("  table %-24s %12llu rows  dim %u%s\n", t.name().c_str(),
                static_cast<unsigned long long>(t.rows()), t.dim(),
                t.missing_is_zero() ? "  (missing keys read zeros)" : "");
    total += t.rows();
  }
  std::printf("  %llu rows, %llu dense values, %llu dense buffers\n",
              static_cast<unsigned long long>(total),
              static_cast<unsigned long long>(manifest->dense_values()),
              static_cast<unsigned long long>(manifest->dense_buffers()));
  return 0;
}

}  // namespace
}  // namespace ctrps

int main(int argc, char** argv) {
  ctrps::ParseFlags(
      &argc, &argv,
      "exports a checkpoint for serving: the model config, dense weights and embeddings (no "
      "optimizer state).\n"
      "  ctr-export CHECKPOINT OUT [--fp16] [--min_count N]\n"
      "CHECKPOINT is a ckpt-<step> directory, or a checkpoint root (checkpoint.dir) whose newest\n"
      "complete checkpoint is used. OUT is written atomically; an earlier export there is\n"
      "replaced. Prints the export's size and rows per table.");
  if (argc != 3) {
    std::fprintf(stderr,
                 "usage: ctr-export CHECKPOINT OUT [--fp16] [--min_count N] (see --help)\n");
    return 2;
  }
  return ctrps::Main(argv[1], argv[2]);
}
