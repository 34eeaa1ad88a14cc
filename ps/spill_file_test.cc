#include "ps/spill_file.h"

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <random>
#include <unordered_map>
#include <vector>

#include "gtest/gtest.h"
#include "ps/file_size_limit_for_test.h"

namespace ctrps {
namespace {

std::string TestPath(const std::string& name) {
  return testing::TempDir() + "/spill_file_" + name + "_" + std::to_string(getpid());
}

// A row of `bytes` bytes: key first, then words derived from (key, version).
std::vector<std::byte> Row(size_t bytes, uint64_t key, uint64_t version) {
  std::vector<std::byte> row(bytes);
  std::memcpy(row.data(), &key, 8);
  for (size_t off = 8; off + 8 <= bytes; off += 8) {
    uint64_t w = key * 0x9e3779b97f4a7c15ULL + version * 31 + off;
    std::memcpy(row.data() + off, &w, 8);
  }
  return row;
}

// Erases `key` if it is stored (Find must agree with `expect`, key ->
// version), or puts version `version` of its row.
void ApplyOp(SpillFile& f, size_t row_bytes, uint64_t key, bool erase, uint64_t version,
             std::unordered_map<uint64_t, uint64_t>& expect) {
  if (erase) {
    std::byte* row = f.Find(key);
    ASSERT_EQ(row != nullptr, expect.count(key) == 1) << "key " << key;
    if (row != nullptr) {
      f.EraseFound(row);
      expect.erase(key);
    }
  } else {
    ASSERT_TRUE(f.Put(Row(row_bytes, key, version).data()).ok());
    expect[key] = version;
  }
}

// Random puts, overwrites and erases against a map; every row read back must
// equal the last one written. Covers growth, tombstones and their sweeps.
void CheckAgainstMap(size_t row_bytes, int ops, uint64_t key_space) {
  auto file = SpillFile::Create(TestPath("map" + std::to_string(row_bytes)), row_bytes);
  ASSERT_TRUE(file.ok()) << file.status();
  SpillFile& f = **file;
  std::unordered_map<uint64_t, uint64_t> expect;  // key -> version
  std::mt19937_64 rng(row_bytes);
  for (int op = 0; op < ops; ++op) {
    const uint64_t key = rng() % key_space * 0x100000001ULL;  // keys with high bits set too
    const bool erase = rng() % 3 == 0;
    ASSERT_NO_FATAL_FAILURE(ApplyOp(f, row_bytes, key, erase, op, expect)) << "at op " << op;
  }
  ASSERT_EQ(f.size(), expect.size());
  for (const auto& [key, version] : expect) {
    const std::byte* row = f.Find(key);
    ASSERT_NE(row, nullptr) << key;
    ASSERT_EQ(std::memcmp(row, Row(row_bytes, key, version).data(), row_bytes), 0) << key;
  }
  size_t seen = 0;
  f.ForEach([&](std::byte* row) {
    uint64_t key;
    std::memcpy(&key, row, 8);
    EXPECT_EQ(expect.count(key), 1u) << key;
    ++seen;
    return false;
  });
  EXPECT_EQ(seen, expect.size());
}

// Keys [0, keys) hold Row(row_bytes, key, 1) but for every `erased_every`-th
// (from 0), which was erased; 0: none was.
void ExpectRowsWithGaps(SpillFile& f, size_t row_bytes, uint64_t keys, uint64_t erased_every) {
  for (uint64_t k = 0; k < keys; ++k) {
    const std::byte* row = f.Find(k);
    if (erased_every != 0 && k % erased_every == 0) {
      EXPECT_EQ(row, nullptr) << k;
      continue;
    }
    ASSERT_NE(row, nullptr) << k;
    ASSERT_EQ(std::memcmp(row, Row(row_bytes, k, 1).data(), row_bytes), 0) << k;
  }
}

TEST(SpillFileTest, MatchesAMapUnderPutsOverwritesAndErases) { CheckAgainstMap(160, 200000, 40000); }

TEST(SpillFileTest, RowsLargerThanAPageMatchAMap) { CheckAgainstMap(5000, 20000, 3000); }

TEST(SpillFileTest, ChurnAtConstantSizeKeepsTheFileFromGrowing) {
  // A table over its limit: every row that comes back in is replaced by
  // another going out. Tombstones must be swept, not grown past.
  auto file = SpillFile::Create(TestPath("churn"), 96);
  ASSERT_TRUE(file.ok()) << file.status();
  SpillFile& f = **file;
  for (uint64_t k = 0; k < 50000; ++k) ASSERT_TRUE(f.Put(Row(96, k, 0).data()).ok());
  const uint64_t bytes = f.file_bytes();
  std::mt19937_64 rng(7);
  std::vector<uint64_t> out;  // keys not in the file
  for (uint64_t k = 50000; k < 60000; ++k) out.push_back(k);
  for (int i = 0; i < 500000; ++i) {
    uint64_t in = rng() % 60000;
    std::byte* row = f.Find(in);
    if (row == nullptr) continue;
    f.EraseFound(row);
    size_t j = rng() % out.size();
    ASSERT_TRUE(f.Put(Row(96, out[j], i).data()).ok());
    out[j] = in;
  }
  EXPECT_EQ(f.size(), 50000u);
  EXPECT_LE(f.file_bytes(), bytes);
  for (uint64_t k : out) EXPECT_EQ(f.Find(k), nullptr);
}

TEST(SpillFileTest, ForEachCanChangeAndRemoveRows) {
  auto file = SpillFile::Create(TestPath("foreach"), 32);
  ASSERT_TRUE(file.ok()) << file.status();
  SpillFile& f = **file;
  for (uint64_t k = 1; k <= 1000; ++k) ASSERT_TRUE(f.Put(Row(32, k, 0).data()).ok());
  f.ForEach([](std::byte* row) {
    uint64_t key;
    std::memcpy(&key, row, 8);
    std::memset(row + 8, 0xab, 8);
    return key % 2 == 0;
  });
  EXPECT_EQ(f.size(), 500u);
  for (uint64_t k = 1; k <= 1000; ++k) {
    const std::byte* row = f.Find(k);
    ASSERT_EQ(row != nullptr, k % 2 == 1) << k;
    if (row != nullptr) {
      EXPECT_EQ(row[8], std::byte{0xab});
    }
  }
}

TEST(SpillFileTest, FileIsRemovedWithTheObject) {
  const std::string path = TestPath("removed");
  std::string last;
  {
    auto file = SpillFile::Create(path, 64);
    ASSERT_TRUE(file.ok()) << file.status();
    for (uint64_t k = 0; k < 10000; ++k) ASSERT_TRUE((*file)->Put(Row(64, k, 0).data()).ok());
    last = (*file)->file();
    EXPECT_NE(last, path);  // it grew, into a new file
    EXPECT_TRUE(std::filesystem::exists(last));
    EXPECT_FALSE(std::filesystem::exists(path));  // the first one is gone
  }
  EXPECT_FALSE(std::filesystem::exists(last));
}

TEST(SpillFileTest, UncreatableFileIsAnErrorNamingIt) {
  auto file = SpillFile::Create("/nonexistent-dir/x/rows", 64);
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(file.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(file.status().message().find("/nonexistent-dir/x/rows"), std::string::npos) << file.status();
}

TEST(SpillFileTest, GrowthPastTheDiskLimitFailsAndKeepsEveryRow) {
  // A file size limit stands in for a full disk: growing cannot reserve its
  // blocks, so Put fails with an error and the rows already stored stay.
  auto file = SpillFile::Create(TestPath("full"), 160);
  ASSERT_TRUE(file.ok()) << file.status();
  SpillFile& f = **file;
  absl::Status status;
  uint64_t stored = 0;
  {
    ScopedFileSizeLimit limit(1 << 20);
    ASSERT_TRUE(limit.ok());
    for (uint64_t k = 0; k < 100000 && status.ok(); ++k) {
      status = f.Put(Row(160, k, 1).data());
      if (status.ok()) ++stored;
    }
  }
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(status.message().find("cannot reserve"), std::string::npos) << status;
  EXPECT_EQ(f.size(), stored);
  ExpectRowsWithGaps(f, 160, stored, 0);
  // With room again, it goes on.
  EXPECT_TRUE(f.Put(Row(160, stored, 1).data()).ok());
}

TEST(SpillFileTest, RewriteMovesEveryRowIntoAFreshFileAndRemovesTheOld) {
  auto file = SpillFile::Create(TestPath("rewrite"), 160);
  ASSERT_TRUE(file.ok()) << file.status();
  SpillFile& f = **file;
  EXPECT_FALSE(f.written());
  for (uint64_t k = 0; k < 20000; ++k) ASSERT_TRUE(f.Put(Row(160, k, 1).data()).ok());
  // Erased rows leave tombstones in full buckets: the copy must keep every
  // probe sequence whole.
  for (uint64_t k = 0; k < 20000; k += 3) f.EraseFound(f.Find(k));
  EXPECT_TRUE(f.written());
  const std::string before = f.file();
  const int generation = f.generation();
  const uint64_t bytes = f.file_bytes();
  const size_t size = f.size();
  ASSERT_TRUE(f.Rewrite().ok());
  EXPECT_NE(f.file(), before);
  EXPECT_FALSE(std::filesystem::exists(before));
  EXPECT_TRUE(std::filesystem::exists(f.file()));
  EXPECT_EQ(f.generation(), generation + 1);
  EXPECT_FALSE(f.written());
  EXPECT_EQ(f.size(), size);
  EXPECT_EQ(f.file_bytes(), bytes);
  ExpectRowsWithGaps(f, 160, 20000, 3);
  // A row changed in place through Find marks the file written, as Put does.
  std::memcpy(f.Find(1) + 8, Row(160, 1, 2).data() + 8, 152);
  f.MarkWritten();
  EXPECT_TRUE(f.written());
  ASSERT_TRUE(f.Rewrite().ok());
  EXPECT_EQ(std::memcmp(f.Find(1), Row(160, 1, 2).data(), 160), 0);
  ASSERT_TRUE(f.Put(Row(160, 30000, 1).data()).ok());
  EXPECT_TRUE(f.written());
  // A put that grows the file leaves the new file written: it holds the row.
  ASSERT_TRUE(f.Rewrite().ok());
  const int made = f.generation();
  for (uint64_t k = 40000; f.generation() == made; ++k) ASSERT_TRUE(f.Put(Row(160, k, 1).data()).ok());
  EXPECT_TRUE(f.written());
}

TEST(SpillFileTest, RewriteOfAFileOfSeveralChunksKeepsEveryRow) {
  // 96-byte rows: 3,136-byte buckets, so the file is no multiple of the
  // rewrite's 16 MB chunks, and the chunk at its start, copied last, is a
  // short one.
  auto file = SpillFile::Create(TestPath("rewrite_chunks"), 96);
  ASSERT_TRUE(file.ok()) << file.status();
  SpillFile& f = **file;
  for (uint64_t k = 0; k < 200000; ++k) ASSERT_TRUE(f.Put(Row(96, k, 1).data()).ok());
  for (uint64_t k = 0; k < 200000; k += 5) f.EraseFound(f.Find(k));
  ASSERT_GT(f.file_bytes(), 16u << 20);
  ASSERT_NE(f.file_bytes() % (16u << 20), 0u);
  const size_t size = f.size();
  ASSERT_TRUE(f.Rewrite().ok());
  EXPECT_EQ(f.size(), size);
  ExpectRowsWithGaps(f, 96, 200000, 5);
}

// Expects every row of `expect` (key -> version) and nothing else.
void ExpectExactly(SpillFile& f, size_t row_bytes, const std::unordered_map<uint64_t, uint64_t>& expect) {
  ASSERT_EQ(f.size(), expect.size());
  size_t seen = 0;
  f.ForEach([&](std::byte* row) {
    uint64_t key;
    std::memcpy(&key, row, 8);
    auto it = expect.find(key);
    EXPECT_TRUE(it != expect.end()) << "key " << key;
    if (it != expect.end()) {
      EXPECT_EQ(std::memcmp(row, Row(row_bytes, key, it->second).data(), row_bytes), 0) << key;
    }
    ++seen;
    return false;
  });
  EXPECT_EQ(seen, expect.size());
  for (const auto& [key, version] : expect) {
    const std::byte* row = f.Find(key);
    ASSERT_NE(row, nullptr) << key;
    ASSERT_EQ(std::memcmp(row, Row(row_bytes, key, version).data(), row_bytes), 0) << key;
  }
}

TEST(SpillFileTest, RewriteInStepsServesPutsFindsAndErasesBetweenSteps) {
  auto file = SpillFile::Create(TestPath("rewrite_steps"), 160);
  ASSERT_TRUE(file.ok()) << file.status();
  SpillFile& f = **file;
  std::unordered_map<uint64_t, uint64_t> expect;
  constexpr uint64_t kKeys = 20000;
  for (uint64_t k = 0; k < kKeys; ++k) {
    ASSERT_TRUE(f.Put(Row(160, k, 0).data()).ok());
    expect[k] = 0;
  }
  const std::string before = f.file();
  const int generation = f.generation();
  const uint64_t bytes = f.file_bytes();
  ASSERT_TRUE(f.StartRewrite().ok());
  EXPECT_TRUE(f.rewriting());
  std::mt19937_64 rng(7);
  int steps = 0, op = 0;
  while (true) {
    // Operations against both files: keys whose buckets were moved and
    // keys whose buckets were not yet.
    for (int i = 0; i < 200; ++i, ++op) {
      const uint64_t key = rng() % kKeys;
      const bool erase = rng() % 4 == 0;
      ASSERT_NO_FATAL_FAILURE(ApplyOp(f, 160, key, erase, op + 1, expect)) << "at step " << steps;
    }
    ASSERT_EQ(f.file_bytes(), bytes) << "the file grew, which finishes a rewrite: the test would not test steps";
    ASSERT_EQ(f.generation(), generation);
    ASSERT_TRUE(std::filesystem::exists(before));
    if (steps % 8 == 0) ExpectExactly(f, 160, expect);
    ++steps;
    if (f.RewriteStep(64 << 10)) break;
    ASSERT_TRUE(f.rewriting());
  }
  EXPECT_GE(steps, static_cast<int>(bytes / (64 << 10)));
  EXPECT_FALSE(f.rewriting());
  EXPECT_EQ(f.generation(), generation + 1);
  EXPECT_FALSE(std::filesystem::exists(before));
  ExpectExactly(f, 160, expect);
  // A step with nothing in progress is done at once.
  EXPECT_TRUE(f.RewriteStep(64 << 10));
}

TEST(SpillFileTest, GrowthAndTheDestructorFinishARewriteInProgress) {
  std::string first, second;
  {
    auto file = SpillFile::Create(TestPath("rewrite_grow"), 160);
    ASSERT_TRUE(file.ok()) << file.status();
    SpillFile& f = **file;
    std::unordered_map<uint64_t, uint64_t> expect;
    for (uint64_t k = 0; k < 5000; ++k) {
      ASSERT_TRUE(f.Put(Row(160, k, 1).data()).ok());
      expect[k] = 1;
    }
    ASSERT_TRUE(f.StartRewrite().ok());
    ASSERT_FALSE(f.RewriteStep(16 << 10));
    const uint64_t bytes = f.file_bytes();
    for (uint64_t k = 5000; f.file_bytes() == bytes; ++k) {
      ASSERT_TRUE(f.Put(Row(160, k, 1).data()).ok());
      expect[k] = 1;
    }
    EXPECT_FALSE(f.rewriting());
    ExpectExactly(f, 160, expect);
    // Torn down mid-rewrite: both files go.
    ASSERT_TRUE(f.StartRewrite().ok());
    ASSERT_FALSE(f.RewriteStep(16 << 10));
    first = f.file();
    second = TestPath("rewrite_grow") + "." + std::to_string(f.generation() + 1);
    EXPECT_TRUE(std::filesystem::exists(first));
    EXPECT_TRUE(std::filesystem::exists(second));
  }
  EXPECT_FALSE(std::filesystem::exists(first));
  EXPECT_FALSE(std::filesystem::exists(second));
}

TEST(SpillFileTest, RewriteThatCannotReserveItsFileKeepsTheOldOne) {
  auto file = SpillFile::Create(TestPath("rewrite_full"), 160);
  ASSERT_TRUE(file.ok()) << file.status();
  SpillFile& f = **file;
  for (uint64_t k = 0; k < 20000; ++k) ASSERT_TRUE(f.Put(Row(160, k, 1).data()).ok());
  const std::string before = f.file();
  absl::Status status;
  {
    ScopedFileSizeLimit limit(f.file_bytes() / 2);
    ASSERT_TRUE(limit.ok());
    status = f.Rewrite();
  }
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(status.message().find("cannot reserve"), std::string::npos) << status;
  EXPECT_EQ(f.file(), before);
  EXPECT_TRUE(f.written());
  ExpectRowsWithGaps(f, 160, 20000, 0);
  EXPECT_TRUE(f.Rewrite().ok());
}

}  // namespace
}  // namespace ctrps
