#include "worker/embedding_file.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <vector>

#include "gtest/gtest.h"
#include "worker/half.h"
#include "worker/serving_test_util.h"

namespace ctrps {
namespace {

using serving_test::NewTempDir;

std::vector<uint64_t> SortedKeys(int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::set<uint64_t> keys;
  while (static_cast<int>(keys.size()) < n) keys.insert(rng());
  return {keys.begin(), keys.end()};
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(EmbeddingFileTest, WritesTheDocumentedLayout) {
  const std::string path = NewTempDir() + "/t.0.emb";
  auto writer = EmbeddingFileWriter::Create(path, 3, EmbDtype::kF32, 2);
  ASSERT_TRUE(writer.ok()) << writer.status();
  const float a[3] = {1, 2, 3}, b[3] = {-4, 5.5f, 6};
  ASSERT_TRUE((*writer)->Add(7, a).ok());
  ASSERT_TRUE((*writer)->Add(9, b).ok());
  ASSERT_TRUE((*writer)->Finish().ok());
  const std::string bytes = ReadAll(path);
  ASSERT_EQ(bytes.size(), 32u + 2 * 8 + 2 * 3 * 4);
  EXPECT_EQ(bytes.substr(0, 8), "CTRPSEMB");
  uint32_t u32[4];
  std::memcpy(u32, bytes.data() + 8, sizeof(u32));
  EXPECT_EQ(u32[0], 1u);  // version
  EXPECT_EQ(u32[1], 3u);  // dim
  EXPECT_EQ(u32[2], 0u);  // f32
  EXPECT_EQ(u32[3], 0u);  // reserved
  uint64_t u64[3];
  std::memcpy(u64, bytes.data() + 24, sizeof(u64));
  EXPECT_EQ(u64[0], 2u);  // rows
  EXPECT_EQ(u64[1], 7u);
  EXPECT_EQ(u64[2], 9u);
  float values[6];
  std::memcpy(values, bytes.data() + 48, sizeof(values));
  EXPECT_EQ(std::vector<float>(values, values + 6), std::vector<float>({1, 2, 3, -4, 5.5f, 6}));
}

TEST(EmbeddingFileTest, FindsEveryKeyAndNoOther) {
  for (int n : {0, 1, 2, 5, 1000, 20000}) {
    for (EmbDtype dtype : {EmbDtype::kF32, EmbDtype::kF16}) {
      const std::string path = NewTempDir() + "/t.emb";
      const std::vector<uint64_t> keys = SortedKeys(n, n);
      const int dim = 5;
      auto writer = EmbeddingFileWriter::Create(path, dim, dtype, keys.size());
      ASSERT_TRUE(writer.ok());
      std::vector<float> row(dim);
      for (size_t i = 0; i < keys.size(); ++i) {
        for (int d = 0; d < dim; ++d) row[d] = static_cast<float>(i) + 0.125f * d;
        ASSERT_TRUE((*writer)->Add(keys[i], row.data()).ok());
      }
      ASSERT_TRUE((*writer)->Finish().ok());
      auto file = EmbeddingFile::Open(path);
      ASSERT_TRUE(file.ok()) << file.status();
      EXPECT_EQ((*file)->rows(), keys.size());
      EXPECT_EQ((*file)->dim(), dim);
      EXPECT_EQ((*file)->dtype(), dtype);
      for (size_t i = 0; i < keys.size(); ++i) {
        ASSERT_EQ((*file)->Find(keys[i]), static_cast<int64_t>(i)) << n;
        (*file)->ReadRow(i, row.data());
        for (int d = 0; d < dim; ++d) {
          const float want = static_cast<float>(i) + 0.125f * d;
          EXPECT_EQ(row[d], dtype == EmbDtype::kF16 ? HalfToFloat(FloatToHalf(want)) : want);
        }
      }
      std::mt19937_64 rng(99);
      for (int i = 0; i < 2000; ++i) {
        const uint64_t k = rng();
        if (!std::binary_search(keys.begin(), keys.end(), k)) {
          EXPECT_EQ((*file)->Find(k), -1);
        }
      }
      EXPECT_EQ((*file)->Find(0), keys.empty() || keys[0] != 0 ? -1 : 0);
      EXPECT_EQ((*file)->Find(~uint64_t{0}), -1);
    }
  }
}

// Keys that are not well mixed (small integers) all land in one bucket:
// slower, still right.
TEST(EmbeddingFileTest, FindsClusteredKeys) {
  const std::string path = NewTempDir() + "/t.emb";
  auto writer = EmbeddingFileWriter::Create(path, 1, EmbDtype::kF32, 100);
  ASSERT_TRUE(writer.ok());
  for (uint64_t k = 0; k < 100; ++k) {
    const float v = static_cast<float>(k);
    ASSERT_TRUE((*writer)->Add(2 * k, &v).ok());
  }
  ASSERT_TRUE((*writer)->Finish().ok());
  auto file = EmbeddingFile::Open(path);
  ASSERT_TRUE(file.ok());
  for (uint64_t k = 0; k < 200; ++k) {
    EXPECT_EQ((*file)->Find(k), k % 2 == 0 ? static_cast<int64_t>(k / 2) : -1);
  }
}

TEST(EmbeddingFileTest, WriterRejectsKeysOutOfOrderAndWrongCounts) {
  const std::string dir = NewTempDir();
  const float v[2] = {0, 0};
  auto writer = EmbeddingFileWriter::Create(dir + "/a.emb", 2, EmbDtype::kF32, 2);
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Add(5, v).ok());
  EXPECT_EQ((*writer)->Add(5, v).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ((*writer)->Add(4, v).code(), absl::StatusCode::kFailedPrecondition);
  absl::Status finish = (*writer)->Finish();
  EXPECT_EQ(finish.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(finish.message().find("a.emb"), std::string::npos) << finish;

  auto full = EmbeddingFileWriter::Create(dir + "/b.emb", 2, EmbDtype::kF32, 1);
  ASSERT_TRUE(full.ok());
  ASSERT_TRUE((*full)->Add(1, v).ok());
  EXPECT_EQ((*full)->Add(2, v).code(), absl::StatusCode::kFailedPrecondition);
}

class CorruptFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = NewTempDir() + "/t.3.emb";
    auto writer = EmbeddingFileWriter::Create(path_, 2, EmbDtype::kF32, 3);
    ASSERT_TRUE(writer.ok());
    const float v[2] = {1, 2};
    for (uint64_t k : {10, 20, 30}) ASSERT_TRUE((*writer)->Add(k, v).ok());
    ASSERT_TRUE((*writer)->Finish().ok());
    bytes_ = ReadAll(path_);
  }
  absl::Status OpenWith(const std::string& bytes) {
    serving_test::WriteFile(path_, bytes);
    return EmbeddingFile::Open(path_).status();
  }
  void ExpectDataLoss(const absl::Status& s, const std::string& what) {
    EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
    EXPECT_NE(s.message().find(path_), std::string::npos) << s;
    EXPECT_NE(s.message().find(what), std::string::npos) << s;
  }
  std::string path_;
  std::string bytes_;
};

TEST_F(CorruptFileTest, IntactFileOpens) { EXPECT_TRUE(OpenWith(bytes_).ok()); }

TEST_F(CorruptFileTest, TruncatedFileIsDataLoss) {
  ExpectDataLoss(OpenWith(bytes_.substr(0, bytes_.size() - 3)), "truncated");
  ExpectDataLoss(OpenWith(bytes_.substr(0, 20)), "truncated");
  ExpectDataLoss(OpenWith(bytes_ + "x"), "corrupt");
}

TEST_F(CorruptFileTest, WrongMagicIsDataLoss) {
  std::string bad = bytes_;
  bad[0] = 'X';
  ExpectDataLoss(OpenWith(bad), "magic");
}

TEST_F(CorruptFileTest, WrongVersionOrDtypeIsDataLoss) {
  std::string bad = bytes_;
  bad[8] = 2;
  ExpectDataLoss(OpenWith(bad), "version 2");
  bad = bytes_;
  bad[16] = 7;
  ExpectDataLoss(OpenWith(bad), "dtype 7");
}

TEST_F(CorruptFileTest, HugeRowCountIsDataLossNotACrash) {
  std::string bad = bytes_;
  const uint64_t rows = ~uint64_t{0} / 3;
  std::memcpy(bad.data() + 24, &rows, 8);
  ExpectDataLoss(OpenWith(bad), "truncated");
}

TEST_F(CorruptFileTest, KeysOutOfOrderAreDataLoss) {
  std::string bad = bytes_;
  const uint64_t key = 35;  // row 1: 20 -> 35, after row 2's 30
  std::memcpy(bad.data() + 32 + 8, &key, 8);
  ExpectDataLoss(OpenWith(bad), "out of order");
}

TEST(EmbeddingFileTest, MissingFileIsNotFound) {
  const std::string path = NewTempDir() + "/nope.emb";
  absl::Status s = EmbeddingFile::Open(path).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_NE(s.message().find(path), std::string::npos);
}

}  // namespace
}  // namespace ctrps
