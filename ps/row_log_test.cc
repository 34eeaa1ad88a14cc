#include "ps/row_log.h"

#include <unistd.h>

#include <filesystem>
#include <map>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "ps/file_size_limit_for_test.h"

namespace ctrps {
namespace {

std::string TestDir(const std::string& name) {
  const char* tmp = std::getenv("TMPDIR");
  std::string dir = std::string(tmp != nullptr ? tmp : "/tmp") + "/row_log_test_" +
                    std::to_string(getpid()) + "_" + name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// A row of `bytes` for key with every byte after the key derived from
// (key, version), so a stale or torn record shows.
std::vector<std::byte> RowOf(uint64_t key, uint32_t version, size_t bytes) {
  std::vector<std::byte> row(bytes);
  std::memcpy(row.data(), &key, 8);
  for (size_t i = 8; i < bytes; ++i)
    row[i] = static_cast<std::byte>((key * 31 + version * 7 + i) & 0xff);
  return row;
}

std::unique_ptr<RowLog> MakeLog(const std::string& dir, size_t row_bytes,
                                size_t segment_bytes = 64 << 10, size_t buffer_bytes = 8 << 10) {
  RowLog::Options o;
  o.dir = dir;
  o.name = "t";
  o.row_bytes = row_bytes;
  o.segment_bytes = segment_bytes;
  o.buffer_bytes = buffer_bytes;
  auto log = RowLog::Create(o);
  EXPECT_TRUE(log.ok()) << log.status();
  return std::move(*log);
}

std::vector<std::byte> ReadKey(RowLog& log, uint64_t key) {
  const uint32_t addr = log.Find(key);
  EXPECT_NE(addr, RowLog::kNone) << "key " << key;
  std::vector<std::byte> out(log.row_bytes());
  EXPECT_TRUE(log.Read({&addr, 1}, out.data()).ok());
  return out;
}

TEST(RowLogTest, RowsOfAnySizeReadBackExactlyFromBufferAndFiles) {
  // Row sizes of every optimizer at dims 1 to 64, none a multiple of 8 among
  // them, over many segments and buffer flushes.
  for (size_t row_bytes : {36, 40, 44, 92, 100, 152, 160, 236, 544}) {
    const std::string dir = TestDir("sizes");
    auto log = MakeLog(dir, row_bytes);
    constexpr uint64_t kRows = 3000;
    for (uint64_t k = 1; k <= kRows; ++k)
      ASSERT_TRUE(log->Append(RowOf(k * 977, 0, row_bytes).data()).ok());
    EXPECT_EQ(log->size(), kRows);
    EXPECT_EQ(log->stale_bytes(), 0u);
    // One batched read of every row, in a shuffled order.
    std::vector<uint64_t> keys;
    for (uint64_t k = 1; k <= kRows; ++k) keys.push_back(k * 977);
    std::shuffle(keys.begin(), keys.end(), std::mt19937_64(row_bytes));
    std::vector<uint32_t> addrs;
    for (uint64_t key : keys) addrs.push_back(log->Find(key));
    std::vector<std::byte> out(keys.size() * row_bytes);
    ASSERT_TRUE(log->Read(addrs, out.data()).ok());
    for (size_t i = 0; i < keys.size(); ++i) {
      ASSERT_EQ(
          std::memcmp(out.data() + i * row_bytes, RowOf(keys[i], 0, row_bytes).data(), row_bytes),
          0)
          << "row_bytes " << row_bytes << " key " << keys[i];
    }
    EXPECT_GT(log->counters().writes, 1u);
    std::filesystem::remove_all(dir);
  }
}

TEST(RowLogTest, AKeyAppendedAgainReadsItsNewestRecordAndTheOldIsStale) {
  const std::string dir = TestDir("again");
  auto log = MakeLog(dir, 100);
  for (uint64_t k = 1; k <= 100; ++k) ASSERT_TRUE(log->Append(RowOf(k, 0, 100).data()).ok());
  for (uint64_t k = 1; k <= 100; k += 2) ASSERT_TRUE(log->Append(RowOf(k, 1, 100).data()).ok());
  EXPECT_EQ(log->size(), 100u);
  EXPECT_EQ(log->stale_bytes(), 50u * 100);
  for (uint64_t k = 1; k <= 100; ++k) EXPECT_EQ(ReadKey(*log, k), RowOf(k, k % 2, 100)) << k;
  log->Erase(4);
  EXPECT_EQ(log->Find(4), RowLog::kNone);
  EXPECT_EQ(log->size(), 99u);
  EXPECT_EQ(log->stale_bytes(), 51u * 100);
}

TEST(RowLogTest, CompactionKeepsEveryLiveRowAndRemovesStaleSegments) {
  const std::string dir = TestDir("compact");
  auto log = MakeLog(dir, 152, 16 << 10, 4 << 10);
  std::map<uint64_t, uint32_t> version;
  std::mt19937_64 rng(7);
  for (uint64_t k = 0; k < 2000; ++k) {
    ASSERT_TRUE(log->Append(RowOf(k, 0, 152).data()).ok());
    version[k] = 0;
  }
  // Rewrite random keys until compaction is due, then compact in small
  // steps between more rewrites, as the table does between requests.
  uint64_t steps = 0;
  for (int round = 0; round < 20000; ++round) {
    const uint64_t k = rng() % 2000;
    ASSERT_TRUE(log->Append(RowOf(k, ++version[k], 152).data()).ok());
    if (round % 7 == 0) {
      log->Erase(rng() % 2000 + 5000);  // absent keys change nothing
    }
    if (log->CompactionDue()) {
      ASSERT_TRUE(log->CompactStep(2 << 10).ok());
      ++steps;
    }
  }
  EXPECT_GT(log->counters().compacted_segments, 0u);
  EXPECT_GT(steps, 0u);
  // The log stayed near its bound: stale bytes under the fraction plus the
  // segments a compaction step has not finished.
  EXPECT_LT(log->stale_bytes(), 0.25 * log->file_bytes() + 3 * (16 << 10)) << log->file_bytes();
  size_t files = 0;
  for (auto& e : std::filesystem::directory_iterator(dir)) files += e.is_regular_file();
  EXPECT_LE(files * (16 << 10), log->file_bytes() + 2 * (16 << 10));
  for (uint64_t k = 0; k < 2000; ++k) ASSERT_EQ(ReadKey(*log, k), RowOf(k, version[k], 152)) << k;
}

TEST(RowLogTest, ForEachLiveVisitsLiveRecordsOnlyFromAPosition) {
  const std::string dir = TestDir("scan");
  auto log = MakeLog(dir, 64, 8 << 10, 1 << 10);
  for (uint64_t k = 0; k < 500; ++k) ASSERT_TRUE(log->Append(RowOf(k, 0, 64).data()).ok());
  const RowLog::Position mark = log->End();
  for (uint64_t k = 0; k < 100; ++k) ASSERT_TRUE(log->Append(RowOf(k, 1, 64).data()).ok());
  for (uint64_t k = 1000; k < 1050; ++k) ASSERT_TRUE(log->Append(RowOf(k, 0, 64).data()).ok());
  std::map<uint64_t, int> all, since;
  ASSERT_TRUE(log->ForEachLive([&](const std::byte* row, uint32_t) {
                   uint64_t key;
                   std::memcpy(&key, row, 8);
                   ++all[key];
                   EXPECT_EQ(std::memcmp(row, RowOf(key, key < 100 ? 1 : 0, 64).data(), 64), 0)
                       << key;
                 })
                  .ok());
  EXPECT_EQ(all.size(), 550u);
  for (const auto& [key, n] : all) EXPECT_EQ(n, 1) << key;
  ASSERT_TRUE(log->ForEachLive(
                     [&](const std::byte* row, uint32_t addr) {
                       uint64_t key;
                       std::memcpy(&key, row, 8);
                       ++since[key];
                       EXPECT_FALSE(log->PositionOf(addr) < mark);
                     },
                     mark)
                  .ok());
  EXPECT_EQ(since.size(), 150u);
}

TEST(RowLogTest, AFullDiskFailsTheAppendAndLosesNoRow) {
  const std::string dir = TestDir("full");
  auto log = MakeLog(dir, 236, 1 << 20, 16 << 10);
  uint64_t appended = 0;
  absl::Status status;
  {
    ScopedFileSizeLimit limit(64 << 10);
    ASSERT_TRUE(limit.ok());
    for (; appended < 10000; ++appended) {
      status = log->Append(RowOf(appended, 0, 236).data());
      if (!status.ok()) break;
    }
  }
  ASSERT_FALSE(status.ok()) << "the segment never reached the size limit";
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
  EXPECT_NE(status.message().find("writing " + dir + "/t.0"), std::string::npos) << status;
  EXPECT_EQ(log->size(), appended);
  for (uint64_t k = 0; k < appended; ++k) ASSERT_EQ(ReadKey(*log, k), RowOf(k, 0, 236)) << k;
  // With room again, appends go on where they stopped.
  for (uint64_t k = appended; k < appended + 1000; ++k)
    ASSERT_TRUE(log->Append(RowOf(k, 0, 236).data()).ok());
  for (uint64_t k = 0; k < appended + 1000; ++k) ASSERT_EQ(ReadKey(*log, k), RowOf(k, 0, 236)) << k;
}

TEST(RowLogTest, TheFreeDiskGuardRefusesAppendsBeforeWriting) {
  const std::string dir = TestDir("guard");
  RowLog::Options o;
  o.dir = dir;
  o.name = "t";
  o.row_bytes = 64;
  o.buffer_bytes = 4 << 10;
  o.min_free_disk_bytes = uint64_t{1} << 60;  // more than any disk has
  auto log = std::move(*RowLog::Create(o));
  absl::Status status;
  uint64_t k = 0;
  for (; k < 1000 && status.ok(); ++k) status = log->Append(RowOf(k, 0, 64).data());
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
  EXPECT_NE(status.message().find("cluster.min_free_disk_mb"), std::string::npos) << status;
  EXPECT_EQ(log->counters().writes, 0u);
  EXPECT_EQ(std::filesystem::file_size(dir + "/t.0"), 0u);
  for (uint64_t i = 0; i + 1 < k; ++i) ASSERT_EQ(ReadKey(*log, i), RowOf(i, 0, 64));
}

TEST(RowLogTest, ATruncatedSegmentIsDataLossNamingTheFile) {
  const std::string dir = TestDir("damaged");
  auto log = MakeLog(dir, 64, 64 << 10, 1 << 10);
  for (uint64_t k = 0; k < 200; ++k) ASSERT_TRUE(log->Append(RowOf(k, 0, 64).data()).ok());
  ASSERT_EQ(truncate((dir + "/t.0").c_str(), 64 * 10), 0);
  const uint32_t addr = log->Find(100);
  std::vector<std::byte> out(64);
  const absl::Status status = log->Read({&addr, 1}, out.data());
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
  EXPECT_NE(status.message().find(dir + "/t.0"), std::string::npos) << status;
}

TEST(RowLogTest, BadOptionsAreRefused) {
  RowLog::Options o;
  o.dir = "/tmp";
  o.name = "t";
  o.row_bytes = 4;
  EXPECT_EQ(RowLog::Create(o).status().code(), absl::StatusCode::kInvalidArgument);
  o.row_bytes = 64;
  o.segment_bytes = 100;
  EXPECT_EQ(RowLog::Create(o).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ctrps
