#include "worker/export.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/row_format.h"
#include "gtest/gtest.h"
#include "ps/file_size_limit_for_test.h"
#include "rocksdb/db.h"
#include "worker/embedding_file.h"
#include "worker/half.h"
#include "worker/serving_test_util.h"

namespace ctrps {
namespace {

namespace fs = std::filesystem;
using serving_test::BuildCheckpoint;
using serving_test::DataLines;
using serving_test::NewTempDir;
using serving_test::SmallConfig;
using serving_test::TestCheckpoint;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class ExportTest : public ::testing::Test {
 protected:
  void Build(ModelConfig::Type type, int num_servers = 2) {
    root_ = NewTempDir();
    ckpt_ = BuildCheckpoint(SmallConfig(type, /*batch_norm=*/true), root_ + "/ckpt-1234",
                            num_servers, DataLines(200, 3));
    out_ = root_ + "/export";
  }
  void ExpectError(const absl::StatusOr<ExportManifest>& result, absl::StatusCode code,
                   const std::string& names) {
    EXPECT_EQ(result.status().code(), code) << result.status();
    EXPECT_NE(result.status().message().find(names), std::string::npos) << result.status();
    EXPECT_FALSE(fs::exists(out_)) << "a failed export must not leave " << out_;
    for (const auto& entry : fs::directory_iterator(root_)) {
      EXPECT_EQ(entry.path().filename().string().find(".export.tmp"), std::string::npos)
          << "temporary directory left behind: " << entry.path();
    }
  }
  // Every exported row of `table` must be a stored row with count >=
  // min_count, on the same server, and every such stored row is exported.
  void CheckTable(const ExportManifest& m, const ExportTable& et, uint32_t min_count, bool fp16) {
    const auto& stored = ckpt_.rows.at(et.name());
    uint64_t total = 0;
    std::set<uint64_t> seen;
    for (int j = 0; j < et.file_size(); ++j) {
      EXPECT_EQ(et.file(j), absl::StrCat(et.name(), ".", j, ".emb"));
      auto file = EmbeddingFile::Open(out_ + "/" + et.file(j));
      ASSERT_TRUE(file.ok()) << file.status();
      EXPECT_EQ((*file)->dim(), static_cast<int>(et.dim()));
      EXPECT_EQ((*file)->dtype(), fp16 ? EmbDtype::kF16 : EmbDtype::kF32);
      auto keys = (*file)->keys();
      std::vector<float> row(et.dim());
      for (size_t i = 0; i < keys.size(); ++i) {
        if (i > 0) {
          EXPECT_LT(keys[i - 1], keys[i]);
        }
        auto it = stored.find(keys[i]);
        ASSERT_NE(it, stored.end()) << "exported key " << keys[i] << " was never stored";
        EXPECT_EQ(it->second.server, j);
        EXPECT_GE(it->second.meta.count, min_count);
        (*file)->ReadRow(i, row.data());
        for (size_t d = 0; d < row.size(); ++d) {
          const float w = it->second.weights[d];
          if (fp16) {
            EXPECT_EQ(row[d], HalfToFloat(FloatToHalf(w)));
            EXPECT_NEAR(row[d], w, std::fabs(w) * (1.0f / 2048) + 1e-7f);
          } else {
            EXPECT_EQ(row[d], w) << et.name() << " key " << keys[i] << " d " << d;
          }
        }
        seen.insert(keys[i]);
      }
      total += keys.size();
    }
    EXPECT_EQ(total, et.rows());
    for (const auto& [key, row] : stored) {
      EXPECT_EQ(seen.count(key), row.meta.count >= min_count ? 1u : 0u) << key;
    }
  }

  std::string root_, out_;
  TestCheckpoint ckpt_;
};

TEST_F(ExportTest, Fp32RoundTripKeepsEveryRowAndTheDenseValues) {
  Build(ModelConfig::DEEPFM);
  auto m = ExportFromCheckpoint(ckpt_.dir, out_, /*fp16=*/false, /*min_count=*/0);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_FALSE(m->fp16());
  EXPECT_EQ(m->min_count(), 0u);
  EXPECT_EQ(m->global_step(), 1234u);
  EXPECT_EQ(m->config().SerializeAsString(), ckpt_.config.SerializeAsString());
  ASSERT_EQ(m->table_size(), 3);
  std::map<std::string, bool> zero;
  for (const ExportTable& t : m->table()) {
    EXPECT_EQ(t.dim(), 5u);  // DeepFM: dim 4 + the linear column
    EXPECT_EQ(t.rows(), ckpt_.rows[t.name()].size());
    EXPECT_EQ(t.file_size(), 2);
    zero[t.name()] = t.missing_is_zero();
    CheckTable(*m, t, 0, false);
  }
  EXPECT_EQ(zero, (std::map<std::string, bool>{{"item", true}, {"price", false}, {"user", false}}));

  // The manifest on disk is the one returned.
  auto read = ReadExportManifest(out_);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->SerializeAsString(), m->SerializeAsString());

  // dense.bin: values then buffers, no optimizer state.
  EXPECT_EQ(m->dense_file(), "dense.bin");
  EXPECT_EQ(m->dense_values(), ckpt_.dense_values.size());
  EXPECT_EQ(m->dense_buffers(), ckpt_.dense_buffers.size());
  EXPECT_GT(ckpt_.dense_buffers.size(), 0u);  // batch norm: buffers are exported too
  std::string want(reinterpret_cast<const char*>(ckpt_.dense_values.data()),
                   4 * ckpt_.dense_values.size());
  want.append(reinterpret_cast<const char*>(ckpt_.dense_buffers.data()),
              4 * ckpt_.dense_buffers.size());
  EXPECT_EQ(ReadAll(out_ + "/dense.bin"), want);

  // Nothing else in the export, nothing left beside it.
  std::set<std::string> files;
  for (const auto& e : fs::directory_iterator(out_)) files.insert(e.path().filename().string());
  EXPECT_EQ(files,
            (std::set<std::string>{"manifest.pbtxt", "dense.bin", "user.0.emb", "user.1.emb",
                                   "item.0.emb", "item.1.emb", "price.0.emb", "price.1.emb"}));
  std::set<std::string> beside;
  for (const auto& e : fs::directory_iterator(root_)) beside.insert(e.path().filename().string());
  EXPECT_EQ(beside, (std::set<std::string>{"ckpt-1234", "export"}));
}

// Relative path -> size of every file under `dir`.
std::map<std::string, uintmax_t> Listing(const std::string& dir) {
  std::map<std::string, uintmax_t> files;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) files[fs::relative(e.path(), dir).string()] = e.file_size();
  }
  return files;
}

TEST_F(ExportTest, LeavesTheCheckpointAsItWas) {
  Build(ModelConfig::DEEPFM);
  const auto before = Listing(ckpt_.dir);
  ASSERT_TRUE(ExportFromCheckpoint(ckpt_.dir, out_, false, 0).ok());
  EXPECT_EQ(Listing(ckpt_.dir), before);
}

TEST_F(ExportTest, HeaderIsTheDocumentedOne) {
  Build(ModelConfig::LR, 1);
  auto m = ExportFromCheckpoint(ckpt_.dir, out_, false, 0);
  ASSERT_TRUE(m.ok()) << m.status();
  const std::string bytes = ReadAll(out_ + "/user.0.emb");
  const uint64_t rows = ckpt_.rows["user"].size();
  ASSERT_EQ(bytes.size(), 32 + rows * 8 + rows * 5 * 4);
  EXPECT_EQ(bytes.substr(0, 8), "CTRPSEMB");
  uint32_t u32[4];
  std::memcpy(u32, bytes.data() + 8, 16);
  EXPECT_EQ(u32[0], 1u);
  EXPECT_EQ(u32[1], 5u);  // LR: dim 4 + linear column
  EXPECT_EQ(u32[2], 0u);
  EXPECT_EQ(u32[3], 0u);
  uint64_t header_rows;
  std::memcpy(&header_rows, bytes.data() + 24, 8);
  EXPECT_EQ(header_rows, rows);
  // Keys ascending, then the first row's values as stored.
  uint64_t first_key;
  std::memcpy(&first_key, bytes.data() + 32, 8);
  EXPECT_EQ(first_key, ckpt_.rows["user"].begin()->first);
  float first_row[5];
  std::memcpy(first_row, bytes.data() + 32 + rows * 8, sizeof(first_row));
  EXPECT_EQ(std::vector<float>(first_row, first_row + 5),
            ckpt_.rows["user"].begin()->second.weights);
  for (const ExportTable& t : m->table()) CheckTable(*m, t, 0, false);
}

TEST_F(ExportTest, Fp16IsWithinHalfPrecision) {
  Build(ModelConfig::DEEPFM);
  auto m = ExportFromCheckpoint(ckpt_.dir, out_, /*fp16=*/true, 0);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_TRUE(m->fp16());
  for (const ExportTable& t : m->table()) CheckTable(*m, t, 0, true);
  // Half the value bytes of an f32 export.
  const uint64_t rows = ckpt_.rows["user"].size();
  uint64_t bytes = 0;
  for (int j = 0; j < 2; ++j) bytes += fs::file_size(absl::StrCat(out_, "/user.", j, ".emb"));
  EXPECT_EQ(bytes, 2 * 32 + rows * 8 + rows * 5 * 2);
}

TEST_F(ExportTest, MinCountDropsRarelySeenRows) {
  Build(ModelConfig::DEEPFM);
  auto m = ExportFromCheckpoint(ckpt_.dir, out_, false, /*min_count=*/3);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->min_count(), 3u);
  for (const ExportTable& t : m->table()) {
    EXPECT_TRUE(t.missing_is_zero()) << t.name();  // dropped rows must read zeros
    uint64_t kept = 0;
    for (const auto& [key, row] : ckpt_.rows[t.name()]) kept += row.meta.count >= 3;
    EXPECT_EQ(t.rows(), kept);
    EXPECT_LT(kept, ckpt_.rows[t.name()].size()) << "the test should drop some rows";
    CheckTable(*m, t, 3, false);
  }
}

TEST_F(ExportTest, MinCountOneMarksTablesMissingIsZero) {
  Build(ModelConfig::LR, 1);
  auto m = ExportFromCheckpoint(ckpt_.dir, out_, false, 1);
  ASSERT_TRUE(m.ok()) << m.status();
  for (const ExportTable& t : m->table()) {
    EXPECT_TRUE(t.missing_is_zero()) << t.name();
    EXPECT_EQ(t.rows(), ckpt_.rows[t.name()].size());  // every stored row has count >= 1
  }
}

TEST_F(ExportTest, ReplacesAnExistingExport) {
  Build(ModelConfig::LR, 1);
  ASSERT_TRUE(ExportFromCheckpoint(ckpt_.dir, out_, false, 0).ok());
  auto m = ExportFromCheckpoint(ckpt_.dir, out_, true, 0);
  ASSERT_TRUE(m.ok()) << m.status();
  auto read = ReadExportManifest(out_);
  ASSERT_TRUE(read.ok());
  EXPECT_TRUE(read->fp16());
  std::set<std::string> beside;
  for (const auto& e : fs::directory_iterator(root_)) beside.insert(e.path().filename().string());
  EXPECT_EQ(beside, (std::set<std::string>{"ckpt-1234", "export"}));
}

TEST_F(ExportTest, RefusesToReplaceADirectoryThatIsNotAnExport) {
  Build(ModelConfig::LR, 1);
  fs::create_directories(out_);
  serving_test::WriteFile(out_ + "/precious.txt", "keep me");
  auto m = ExportFromCheckpoint(ckpt_.dir, out_, false, 0);
  EXPECT_EQ(m.status().code(), absl::StatusCode::kFailedPrecondition) << m.status();
  EXPECT_NE(m.status().message().find(out_), std::string::npos) << m.status();
  EXPECT_EQ(ReadAll(out_ + "/precious.txt"), "keep me");
}

TEST_F(ExportTest, MissingManifestIsNotFound) {
  Build(ModelConfig::LR, 1);
  fs::remove(ckpt_.dir + "/manifest.pbtxt");
  ExpectError(ExportFromCheckpoint(ckpt_.dir, out_, false, 0), absl::StatusCode::kNotFound,
              ckpt_.dir + "/manifest.pbtxt");
}

TEST_F(ExportTest, DamagedManifestIsDataLoss) {
  Build(ModelConfig::LR, 1);
  serving_test::WriteFile(ckpt_.dir + "/manifest.pbtxt", "global_step: 12\ntable { name: ");
  ExpectError(ExportFromCheckpoint(ckpt_.dir, out_, false, 0), absl::StatusCode::kDataLoss,
              "manifest.pbtxt");
}

TEST_F(ExportTest, MissingServerDirectoryIsNotFound) {
  Build(ModelConfig::DEEPFM, 2);
  fs::remove_all(ckpt_.dir + "/server-1");
  ExpectError(ExportFromCheckpoint(ckpt_.dir, out_, false, 0), absl::StatusCode::kNotFound,
              ckpt_.dir + "/server-1");
}

TEST_F(ExportTest, MissingDenseFileIsNotFound) {
  Build(ModelConfig::LR, 1);
  fs::remove(ckpt_.dir + "/dense.bin");
  ExpectError(ExportFromCheckpoint(ckpt_.dir, out_, false, 0), absl::StatusCode::kNotFound,
              "dense.bin");
}

TEST_F(ExportTest, DenseFileOfTheWrongSizeIsDataLoss) {
  Build(ModelConfig::LR, 1);
  const std::string dense = ReadAll(ckpt_.dir + "/dense.bin");
  serving_test::WriteFile(ckpt_.dir + "/dense.bin", dense.substr(0, dense.size() - 4));
  ExpectError(ExportFromCheckpoint(ckpt_.dir, out_, false, 0), absl::StatusCode::kDataLoss,
              ckpt_.dir + "/dense.bin");
}

// Adds one raw entry to a server's store.
void PutRaw(const std::string& dir, const std::string& key, const std::string& value) {
  rocksdb::DB* db = nullptr;
  rocksdb::Options options;
  ASSERT_TRUE(rocksdb::DB::Open(options, dir, &db).ok());
  ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), key, value).ok());
  ASSERT_TRUE(db->Flush(rocksdb::FlushOptions()).ok());
  delete db;
}

TEST_F(ExportTest, RowOfTheWrongSizeIsDataLoss) {
  Build(ModelConfig::LR, 2);
  const CheckpointTable& user = ckpt_.manifest.table(0);
  ASSERT_EQ(user.name(), "user");
  PutRaw(ckpt_.dir + "/server-1", EncodeRowKey(user.id(), 42), std::string(40, '\0'));
  ExpectError(ExportFromCheckpoint(ckpt_.dir, out_, false, 0), absl::StatusCode::kDataLoss,
              ckpt_.dir + "/server-1: table \"user\" key 42: row of 40 bytes");
}

TEST_F(ExportTest, RowOfAnUnknownTableIsDataLoss) {
  Build(ModelConfig::LR, 1);
  PutRaw(ckpt_.dir + "/server-0", EncodeRowKey(77, 1), std::string(40, '\0'));
  ExpectError(ExportFromCheckpoint(ckpt_.dir, out_, false, 0), absl::StatusCode::kDataLoss,
              "table id 77");
}

TEST_F(ExportTest, KeyOfTheWrongSizeIsDataLoss) {
  Build(ModelConfig::LR, 1);
  PutRaw(ckpt_.dir + "/server-0", "short", "x");
  ExpectError(ExportFromCheckpoint(ckpt_.dir, out_, false, 0), absl::StatusCode::kDataLoss,
              ckpt_.dir + "/server-0: a key of 5 bytes");
}

TEST_F(ExportTest, ExportToAFullDiskIsResourceExhaustedAndLeavesNothing) {
  Build(ModelConfig::LR, 1);
  absl::StatusOr<ExportManifest> result;
  {
    // Smaller than any exported file: the first write past it fails as on a
    // full disk.
    ScopedFileSizeLimit limit(64);
    ASSERT_TRUE(limit.ok());
    result = ExportFromCheckpoint(ckpt_.dir, out_, false, 0);
  }
  ExpectError(result, absl::StatusCode::kResourceExhausted, "write failed");
}

TEST_F(ExportTest, TableDimThatDisagreesWithTheConfigIsDataLoss) {
  Build(ModelConfig::LR, 1);
  CheckpointManifest m = ckpt_.manifest;
  m.mutable_table(1)->set_dim(4);  // LR stores dim 4 + 1
  std::string text;
  google::protobuf::TextFormat::PrintToString(m, &text);
  serving_test::WriteFile(ckpt_.dir + "/manifest.pbtxt", text);
  ExpectError(ExportFromCheckpoint(ckpt_.dir, out_, false, 0), absl::StatusCode::kDataLoss,
              "table \"item\" has dim 4");
}

}  // namespace
}  // namespace ctrps
