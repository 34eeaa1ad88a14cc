// Helpers for the serving tests (export, predictor): a small experiment
// config and a checkpoint built by hand in the documented layout
// (common/proto/checkpoint.proto), without servers.
#ifndef CTRPS_WORKER_SERVING_TEST_UTIL_H_
#define CTRPS_WORKER_SERVING_TEST_UTIL_H_

#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/config.h"
#include "common/hash.h"
#include "common/model_tables.h"
#include "common/proto/checkpoint.pb.h"
#include "common/row_format.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "ps/sparse_optimizer.h"
#include "rocksdb/db.h"
#include "worker/data/key_dedup.h"
#include "worker/data/sample_parser.h"
#include "worker/feature_assembler.h"
#include "worker/nn/models/ctr_model.h"

namespace ctrps {
namespace serving_test {

// A fresh directory under the test temp dir, removed when the process exits.
inline std::string NewTempDir() {
  static std::atomic<int> counter{0};
  static std::vector<std::string>* const made = [] {
    auto* v = new std::vector<std::string>;
    std::atexit([] {
      std::error_code ignored;
      for (const std::string& d : *made) std::filesystem::remove_all(d, ignored);
    });
    return v;
  }();
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::filesystem::path dir = std::filesystem::path(::testing::TempDir()) /
                              absl::StrCat("ctrps_serving_", info->test_suite_name(), "_",
                                           info->name(), "_", ::getpid(), "_", counter++);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  made->push_back(dir.string());
  return dir.string();
}

// CSV with four features over three tables of dim 4:
//   user  CATEGORICAL -> "user" (no admission, UNIFORM init scale 0.5, Adagrad)
//   item  CATEGORICAL -> "item" (admission: min_count 2, Adam)
//   tags  MULTI_VALUED ("|"), mean-pooled -> "item" (keys hashed as "item")
//   price NUMERIC -> "price" (no admission, NORMAL init scale 0.3, SGD)
inline ExperimentConfig SmallConfig(ModelConfig::Type type, bool batch_norm = false) {
  std::string text = absl::StrCat(R"(
    name: "serving_test"
    table { name: "user" dim: 4 seed: 7 init { kind: UNIFORM scale: 0.5 } }
    table { name: "item" dim: 4 min_count: 2 optimizer { kind: ADAM } }
    table { name: "price" dim: 4 init { kind: NORMAL scale: 0.3 } optimizer { kind: SGD } }
    data {
      format: CSV
      feature { name: "user" }
      feature { name: "item" }
      feature { name: "tags" kind: MULTI_VALUED table: "item" hash_as: "item" separator: "|" }
      feature { name: "price" kind: NUMERIC }
    }
    model { type: )",
                                  ModelConfig::Type_Name(type), R"( hidden_units: 16 batch_norm: )",
                                  batch_norm ? "true" : "false", R"( }
    train { seed: 11 }
  )");
  auto config = ParseExperimentConfig(text, "serving_test.pbtxt");
  EXPECT_TRUE(config.ok()) << config.status();
  return *config;
}

inline const char kCsvHeader[] = "label,user,item,tags,price";

// Data lines: users u0..u(n-1), items i0.., a few tags, a price.
inline std::vector<std::string> DataLines(int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::string> lines;
  for (int i = 0; i < n; ++i) {
    std::string tags;
    const int num_tags = static_cast<int>(rng() % 4);
    for (int t = 0; t < num_tags; ++t) absl::StrAppend(&tags, t ? "|" : "", "i", rng() % 12);
    lines.push_back(absl::StrCat(rng() % 2, ",u", rng() % 10, ",i", rng() % 12, ",", tags, ",",
                                 static_cast<double>(rng() % 1000) / 250.0));
  }
  return lines;
}

// Parses data lines (without header; CSV reads them under kCsvHeader).
inline Batch ParseLines(const ExperimentConfig& config, const std::vector<std::string>& lines) {
  auto parser = SampleParser::Create(config.data());
  EXPECT_TRUE(parser.ok()) << parser.status();
  if ((*parser)->has_header()) {
    EXPECT_TRUE((*parser)->BindHeader(kCsvHeader, "test").ok());
  }
  Batch batch;
  (*parser)->ResetBatch(&batch);
  for (const std::string& line : lines) EXPECT_TRUE((*parser)->Parse(line, &batch).ok()) << line;
  return batch;
}

struct StoredRow {
  RowMeta meta;
  std::vector<float> weights;  // server dim
  std::vector<float> state;
  int server = 0;
};

// A checkpoint written by hand: one RocksDB per server with every row in the
// store layout, a dense.bin from the model's parameters (perturbed), and the
// manifest.
struct TestCheckpoint {
  std::string dir;
  ExperimentConfig config;
  CheckpointManifest manifest;
  std::map<std::string, std::map<uint64_t, StoredRow>> rows;  // table -> key -> row
  std::vector<float> dense_values;
  std::vector<float> dense_buffers;
};

inline std::string StoreValue(const StoredRow& row) {
  std::string v(sizeof(RowMeta) + 4 * (row.weights.size() + row.state.size()), '\0');
  std::memcpy(v.data(), &row.meta, sizeof(RowMeta));
  std::memcpy(v.data() + sizeof(RowMeta), row.weights.data(), 4 * row.weights.size());
  std::memcpy(v.data() + sizeof(RowMeta) + 4 * row.weights.size(), row.state.data(),
              4 * row.state.size());
  return v;
}

inline void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  ASSERT_TRUE(out.good()) << path;
}

// Builds a checkpoint of `config` in `dir` over `num_servers` servers. Every
// key of `lines` gets a row except about one in `skip_every` (so lookups also
// miss); counts run 1..4, so a min_count drops some rows.
inline TestCheckpoint BuildCheckpoint(const ExperimentConfig& config, const std::string& dir,
                                      int num_servers, const std::vector<std::string>& lines,
                                      int skip_every = 5, uint64_t seed = 1) {
  TestCheckpoint ckpt;
  ckpt.dir = dir;
  std::filesystem::create_directories(dir);
  ckpt.config = config;
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);

  // The keys the data uses, per table.
  Batch batch = ParseLines(config, lines);
  KeyDedup dedup(config.data());
  dedup.Run(batch);
  std::vector<TableConfig> server_tables = ServerTables(config);
  CheckpointManifest& m = ckpt.manifest;
  m.set_global_step(1234);
  *m.mutable_config() = config;
  m.set_num_servers(num_servers);
  m.set_num_workers(1);
  std::vector<std::vector<std::string>> store_keys(num_servers), store_values(num_servers);
  for (size_t t = 0; t < server_tables.size(); ++t) {
    const TableConfig& tc = server_tables[t];
    auto optimizer = SparseOptimizer::Create(tc.optimizer(), tc.dim());
    EXPECT_TRUE(optimizer.ok());
    CheckpointTable* ct = m.add_table();
    ct->set_name(tc.name());
    ct->set_id(static_cast<uint32_t>(t) + 3);  // ids need not be indices
    ct->set_dim(tc.dim());
    ct->set_state_dim((*optimizer)->state_dim());
    for (const TableKeys& tk : dedup.tables()) {
      if (tk.name != tc.name()) continue;
      int n = 0;
      for (uint64_t key : tk.unique_keys) {
        if (skip_every > 0 && n++ % skip_every == skip_every - 1) continue;
        StoredRow row;
        row.meta.key = key;
        row.meta.count = 1 + static_cast<uint32_t>(rng() % 4);
        row.meta.updates = row.meta.count;
        row.meta.last_step = 100;
        row.meta.flags = 0xdeadbeef;  // in memory only; must not matter
        for (int d = 0; d < tc.dim(); ++d) row.weights.push_back(uniform(rng));
        for (int d = 0; d < ct->state_dim(); ++d) row.state.push_back(uniform(rng) + 2.0f);
        row.server = static_cast<int>(ShardOf(key, num_servers));
        store_keys[row.server].push_back(EncodeRowKey(ct->id(), key));
        store_values[row.server].push_back(StoreValue(row));
        ckpt.rows[tc.name()][key] = std::move(row);
      }
    }
  }
  for (int j = 0; j < num_servers; ++j) {
    rocksdb::Options options;
    options.create_if_missing = true;
    rocksdb::DB* db = nullptr;
    const std::string server_dir = absl::StrCat(dir, "/server-", j);
    rocksdb::Status s = rocksdb::DB::Open(options, server_dir, &db);
    EXPECT_TRUE(s.ok()) << s.ToString();
    if (!s.ok()) return ckpt;
    for (size_t i = 0; i < store_keys[j].size(); ++i) {
      EXPECT_TRUE(db->Put(rocksdb::WriteOptions(), store_keys[j][i], store_values[j][i]).ok());
    }
    EXPECT_TRUE(db->Flush(rocksdb::FlushOptions()).ok());
    delete db;
  }

  // Dense: a real model's arena, perturbed so that a load that is skipped
  // or misplaced shows; running variances stay positive.
  auto assembler = FeatureAssembler::Create(config);
  EXPECT_TRUE(assembler.ok()) << assembler.status();
  auto model = nn::CreateModel(config.model(), assembler->num_fields(), assembler->dim(),
                               config.train().seed());
  EXPECT_TRUE(model.ok()) << model.status();
  auto values = (*model)->params().values();
  auto buffers = (*model)->params().buffers();
  for (float v : values) ckpt.dense_values.push_back(v + 0.1f * uniform(rng));
  for (float b : buffers) ckpt.dense_buffers.push_back(b + 0.25f + 0.2f * uniform(rng));
  std::string dense;
  auto append = [&](const std::vector<float>& f) {
    dense.append(reinterpret_cast<const char*>(f.data()), 4 * f.size());
  };
  append(ckpt.dense_values);
  append(ckpt.dense_buffers);
  std::vector<float> optimizer_state(2 * values.size(), 9.0f);  // Adam m and v
  append(optimizer_state);
  WriteFile(dir + "/dense.bin", dense);
  m.mutable_dense()->set_path("dense.bin");
  m.mutable_dense()->set_bytes(dense.size());
  m.set_dense_values(values.size());
  m.set_dense_buffers(buffers.size());
  m.set_optimizer_state(optimizer_state.size());

  std::string text;
  google::protobuf::TextFormat::PrintToString(m, &text);
  WriteFile(dir + "/manifest.pbtxt", text);
  return ckpt;
}

}  // namespace serving_test
}  // namespace ctrps

#endif  // CTRPS_WORKER_SERVING_TEST_UTIL_H_
