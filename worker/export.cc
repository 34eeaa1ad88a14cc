#include "worker/export.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/checkpoint_manifest.h"
#include "common/config.h"
#include "common/model_tables.h"
#include "common/row_format.h"
#include "common/status.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"
#include "ps/kv_store.h"
#include "worker/embedding_file.h"

namespace ctrps {
namespace {

namespace fs = std::filesystem;
namespace pb = google::protobuf;

constexpr char kDenseFile[] = "dense.bin";

class ParseErrors : public pb::io::ErrorCollector {
 public:
  explicit ParseErrors(std::string origin) : origin_(std::move(origin)) {}
  void AddError(int line, pb::io::ColumnNumber column, const std::string& message) override {
    if (first_.empty())
      first_ = absl::StrFormat("%s:%d:%d: %s", origin_, line + 1, column + 1, message);
  }
  void AddWarning(int, pb::io::ColumnNumber, const std::string&) override {}
  const std::string& first() const { return first_; }

 private:
  std::string origin_;
  std::string first_;
};

// Reads a text-format manifest; `what` says what a missing file means.
absl::Status ReadTextProto(const std::string& path, const char* what, pb::Message* message) {
  std::ifstream in(path);
  if (!in) {
    if (!fs::exists(path))
      return absl::NotFoundError(absl::StrCat(path, ": no such file (", what, ")"));
    return ErrnoError(path, "cannot read");
  }
  std::stringstream text;
  text << in.rdbuf();
  ParseErrors errors(path);
  pb::TextFormat::Parser parser;
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(text.str(), message)) {
    return absl::DataLossError(errors.first().empty() ? absl::StrCat(path, ": does not parse")
                                                      : errors.first());
  }
  return absl::OkStatus();
}

absl::Status SyncDirectory(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoError(path, "cannot open to sync");
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return ErrnoError(path, "sync failed", err);
  return absl::OkStatus();
}

// The first `bytes` bytes of `path`.
absl::StatusOr<std::string> ReadPrefix(const std::string& path, uint64_t bytes) {
  std::ifstream in(path, std::ios::binary);
  std::string data(bytes, '\0');
  if (!in.read(data.data(), static_cast<std::streamsize>(bytes))) {
    return ErrnoError(path, "cannot read");
  }
  return data;
}

struct TablePlan {
  const CheckpointTable* table = nullptr;
  size_t row_bytes = 0;        // RowMeta + weights + state
  std::vector<uint64_t> rows;  // exported rows per server
  bool missing_is_zero = false;
  std::unique_ptr<EmbeddingFileWriter> writer;  // of the server being exported
};

// Checks one stored row (key, value; common/row_format.h) and finds its table.
absl::StatusOr<TablePlan*> CheckRow(const std::string& dir, std::string_view k, std::string_view v,
                                    const absl::flat_hash_map<uint32_t, int>& by_id,
                                    std::vector<TablePlan>& plans, RowMeta* meta) {
  uint32_t id = 0;
  uint64_t key = 0;
  if (!DecodeRowKey(k, &id, &key)) {
    return absl::DataLossError(
        absl::StrFormat("%s: a key of %d bytes; rows have %d-byte keys (table id, key)", dir,
                        k.size(), kRowKeyBytes));
  }
  auto found = by_id.find(id);
  if (found == by_id.end()) {
    return absl::DataLossError(absl::StrFormat(
        "%s: key %d has table id %d, which the manifest does not list", dir, key, id));
  }
  TablePlan& plan = plans[found->second];
  if (v.size() != plan.row_bytes) {
    return absl::DataLossError(absl::StrFormat(
        "%s: table \"%s\" key %d: row of %d bytes, expected %d (32 meta + %d weights + %d state "
        "floats)",
        dir, plan.table->name(), key, v.size(), plan.row_bytes, plan.table->dim(),
        plan.table->state_dim()));
  }
  std::memcpy(meta, v.data(), sizeof(RowMeta));
  if (meta->key != key) {
    return absl::DataLossError(
        absl::StrFormat("%s: table \"%s\": the row stored under key %d says key %d", dir,
                        plan.table->name(), key, meta->key));
  }
  return &plan;
}

bool IsEmptyOrExport(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return false;
  return fs::is_empty(dir, ec) || fs::exists(dir / kManifestName, ec);
}

std::string ShardFile(const TablePlan& plan, uint32_t server) {
  return absl::StrCat(plan.table->name(), ".", server, ".emb");
}

std::string UniqueSuffix() {
  return absl::StrCat(::getpid(), "-", std::chrono::steady_clock::now().time_since_epoch().count());
}

// Removes the temporary directory unless the export was committed.
class TempDir {
 public:
  explicit TempDir(fs::path path) : path_(std::move(path)) {}
  ~TempDir() {
    std::error_code ignored;
    if (!committed_) fs::remove_all(path_, ignored);
  }
  const fs::path& path() const { return path_; }
  void Commit() { committed_ = true; }

 private:
  fs::path path_;
  bool committed_ = false;
};

absl::Status CheckManifest(const CheckpointManifest& m, const std::string& path) {
  if (!m.has_config()) return absl::DataLossError(absl::StrCat(path, ": no config"));
  if (m.num_servers() == 0) return absl::DataLossError(absl::StrCat(path, ": num_servers is 0"));
  if (m.table_size() == 0) return absl::DataLossError(absl::StrCat(path, ": no tables"));
  absl::flat_hash_map<uint32_t, std::string> ids;
  for (const CheckpointTable& t : m.table()) {
    if (t.name().empty() || t.name().find('/') != std::string::npos) {
      return absl::DataLossError(absl::StrCat(path, ": bad table name \"", t.name(), "\""));
    }
    const TableConfig* config = FindTable(m.config(), t.name());
    if (config == nullptr) {
      return absl::DataLossError(
          absl::StrCat(path, ": table \"", t.name(), "\" is not in the manifest's config"));
    }
    if (t.dim() == 0 || static_cast<int>(t.dim()) != ServerDim(m.config(), config->dim())) {
      return absl::DataLossError(absl::StrFormat(
          "%s: table \"%s\" has dim %d; its config (dim %d, model %s) stores %d", path, t.name(),
          t.dim(), config->dim(), ModelConfig::Type_Name(m.config().model().type()),
          ServerDim(m.config(), config->dim())));
    }
    auto [it, inserted] = ids.emplace(t.id(), t.name());
    if (!inserted) {
      return absl::DataLossError(absl::StrFormat("%s: tables \"%s\" and \"%s\" share id %d", path,
                                                 it->second, t.name(), t.id()));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ExportManifest> ReadExportManifest(const std::string& export_dir) {
  ExportManifest manifest;
  RETURN_IF_ERROR(
      ReadTextProto((fs::path(export_dir) / kManifestName).string(), "not an export", &manifest));
  return manifest;
}

absl::StatusOr<ExportManifest> ExportFromCheckpoint(const std::string& checkpoint_dir,
                                                    const std::string& out_dir, bool fp16,
                                                    uint32_t min_count) {
  const fs::path ckpt(checkpoint_dir);
  const std::string manifest_path = (ckpt / kManifestName).string();
  ASSIGN_OR_RETURN(CheckpointManifest manifest, ReadCheckpointManifest(checkpoint_dir));
  RETURN_IF_ERROR(CheckManifest(manifest, manifest_path));
  const ExperimentConfig& config = manifest.config();

  fs::path out = fs::path(out_dir).lexically_normal();
  if (!out.has_filename()) out = out.parent_path();
  std::error_code ec;
  if (fs::exists(out, ec) && !IsEmptyOrExport(out)) {
    return absl::FailedPreconditionError(absl::StrCat(
        out.string(), ": exists and is not an export (no ", kManifestName, "); not replacing it"));
  }

  // The dense file: values, buffers, optimizer state.
  const fs::path dense_path =
      ckpt / (manifest.dense().path().empty() ? kDenseFile : manifest.dense().path());
  if (!fs::exists(dense_path, ec)) {
    return absl::NotFoundError(absl::StrCat(dense_path.string(), ": no such file"));
  }
  const uint64_t dense_bytes = fs::file_size(dense_path, ec);
  const uint64_t dense_floats =
      manifest.dense_values() + manifest.dense_buffers() + manifest.optimizer_state();
  if (ec || dense_bytes != 4 * dense_floats) {
    return absl::DataLossError(absl::StrFormat(
        "%s: %d bytes, the manifest says %d values + %d buffers + %d optimizer state floats (%d "
        "bytes)",
        dense_path.string(), dense_bytes, manifest.dense_values(), manifest.dense_buffers(),
        manifest.optimizer_state(), 4 * dense_floats));
  }

  const fs::path parent = out.has_parent_path() ? out.parent_path() : fs::path(".");
  fs::create_directories(parent, ec);
  TempDir tmp(parent / absl::StrCat(".", out.filename().string(), ".tmp-", UniqueSuffix()));
  if (!fs::create_directory(tmp.path(), ec)) {
    return ErrnoError(tmp.path().string(), "cannot create", ec.value());
  }

  std::vector<TablePlan> plans(manifest.table_size());
  absl::flat_hash_map<uint32_t, int> by_id;
  for (int t = 0; t < manifest.table_size(); ++t) {
    const CheckpointTable& table = manifest.table(t);
    plans[t].table = &table;
    plans[t].row_bytes = RowBytes(table.dim(), table.state_dim());
    plans[t].rows.assign(manifest.num_servers(), 0);
    const TableConfig& tc = *FindTable(config, table.name());
    plans[t].missing_is_zero = tc.min_count() > 1 || tc.admit_probability() < 1.0f || min_count > 0;
    by_id[table.id()] = t;
  }

  // Per server: one pass checks every row and counts what each table
  // exports, a second writes the files (their headers need the counts).
  const EmbDtype dtype = fp16 ? EmbDtype::kF16 : EmbDtype::kF32;
  for (uint32_t j = 0; j < manifest.num_servers(); ++j) {
    const std::string dir = (ckpt / absl::StrCat("server-", j)).string();
    if (!fs::is_directory(dir, ec)) {
      return absl::NotFoundError(absl::StrFormat(
          "%s: no such directory (the manifest lists %d servers)", dir, manifest.num_servers()));
    }
    RowMeta meta;
    RETURN_IF_ERROR(ScanRocksDb(dir, [&](std::string_view k, std::string_view v) -> absl::Status {
      ASSIGN_OR_RETURN(TablePlan * plan, CheckRow(dir, k, v, by_id, plans, &meta));
      if (meta.count >= min_count) ++plan->rows[j];
      return absl::OkStatus();
    }));
    for (TablePlan& plan : plans) {
      ASSIGN_OR_RETURN(plan.writer, EmbeddingFileWriter::Create(
                                        (tmp.path() / ShardFile(plan, j)).string(),
                                        static_cast<int>(plan.table->dim()), dtype, plan.rows[j]));
    }
    std::vector<float> weights;
    RETURN_IF_ERROR(ScanRocksDb(dir, [&](std::string_view k, std::string_view v) -> absl::Status {
      ASSIGN_OR_RETURN(TablePlan * plan, CheckRow(dir, k, v, by_id, plans, &meta));
      if (meta.count < min_count) return absl::OkStatus();
      weights.resize(plan->table->dim());
      std::memcpy(weights.data(), v.data() + sizeof(RowMeta), sizeof(float) * weights.size());
      return plan->writer->Add(meta.key, weights.data());
    }));
    for (TablePlan& plan : plans) {
      RETURN_IF_ERROR(plan.writer->Finish());
      plan.writer.reset();
    }
  }

  ASSIGN_OR_RETURN(
      std::string dense,
      ReadPrefix(dense_path.string(), 4 * (manifest.dense_values() + manifest.dense_buffers())));
  RETURN_IF_ERROR(WriteFileAtomically((tmp.path() / kDenseFile).string(), dense));

  ExportManifest result;
  *result.mutable_config() = config;
  result.set_fp16(fp16);
  for (const TablePlan& plan : plans) {
    ExportTable* t = result.add_table();
    t->set_name(plan.table->name());
    t->set_dim(plan.table->dim());
    uint64_t rows = 0;
    for (uint32_t j = 0; j < manifest.num_servers(); ++j) {
      rows += plan.rows[j];
      t->add_file(ShardFile(plan, j));
    }
    t->set_rows(rows);
    t->set_missing_is_zero(plan.missing_is_zero);
  }
  result.set_dense_file(kDenseFile);
  result.set_dense_values(manifest.dense_values());
  result.set_dense_buffers(manifest.dense_buffers());
  result.set_global_step(manifest.global_step());
  result.set_min_count(min_count);
  std::string text;
  pb::TextFormat::PrintToString(result, &text);
  RETURN_IF_ERROR(WriteFileAtomically((tmp.path() / kManifestName).string(), text));
  RETURN_IF_ERROR(SyncDirectory(tmp.path().string()));

  // Commit: move an old export aside, rename the new one in, drop the old.
  fs::path old;
  if (fs::exists(out, ec)) {
    if (!IsEmptyOrExport(out)) {
      return absl::FailedPreconditionError(absl::StrCat(out.string(),
                                                        ": exists and is not an export (no ",
                                                        kManifestName, "); not replacing it"));
    }
    old = parent / absl::StrCat(".", out.filename().string(), ".old-", UniqueSuffix());
    fs::rename(out, old, ec);
    if (ec) return ErrnoError(out.string(), "cannot move aside", ec.value());
  }
  fs::rename(tmp.path(), out, ec);
  if (ec) {
    std::error_code ignored;
    if (!old.empty()) fs::rename(old, out, ignored);
    return ErrnoError(out.string(), absl::StrCat("cannot rename ", tmp.path().string(), " to it"),
                      ec.value());
  }
  tmp.Commit();
  if (!old.empty()) fs::remove_all(old, ec);
  RETURN_IF_ERROR(SyncDirectory(parent.string()));
  return result;
}

}  // namespace ctrps
