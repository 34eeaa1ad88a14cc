#include "worker/data/sequence_datagen.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "common/hash.h"
#include "gtest/gtest.h"
#include "worker/data/data_test_util.h"
#include "worker/data/reader.h"

namespace ctrps {
namespace {

using testing_util::NewTempDir;
using testing_util::ParseData;
using testing_util::ReadLines;

SequenceDatagenOptions Small(int64_t rows) {
  SequenceDatagenOptions o;
  o.rows = rows;
  o.users = 500;
  o.items = 2000;
  o.categories = 20;
  o.min_history = 3;
  o.max_history = 12;
  return o;
}

std::vector<int64_t> Ints(absl::string_view list) {
  std::vector<int64_t> out;
  if (list.empty()) return out;
  for (absl::string_view s : absl::StrSplit(list, '^')) {
    int64_t v;
    EXPECT_TRUE(absl::SimpleAtoi(s, &v)) << s;
    out.push_back(v);
  }
  return out;
}

TEST(SequenceDatagenTest, WritesHeaderedCsvSplitsWithProbabilities) {
  const std::string dir = NewTempDir();
  auto report = WriteSequenceData(Small(1000), dir + "/sub/d");
  ASSERT_TRUE(report.ok()) << report.status();
  ASSERT_EQ(report->files.size(), 3u);
  EXPECT_EQ(report->files[0].path, dir + "/sub/d.train.csv");
  const std::vector<int64_t> rows = {800, 100, 100};
  for (int s = 0; s < 3; ++s) {
    const std::vector<std::string> lines = ReadLines(report->files[s].path);
    ASSERT_EQ(lines.size(), rows[s] + 1);
    EXPECT_EQ(lines[0], "label,user,item,cate,hist_items,hist_cates");
    EXPECT_EQ(ReadLines(report->files[s].path + ".prob").size(), static_cast<size_t>(rows[s]));
    for (size_t i = 1; i < lines.size(); ++i) {
      std::vector<std::string> cells = absl::StrSplit(lines[i], ',');
      ASSERT_EQ(cells.size(), 6u) << lines[i];
      EXPECT_TRUE(cells[0] == "0" || cells[0] == "1");
      const std::vector<int64_t> items = Ints(cells[4]), cates = Ints(cells[5]);
      EXPECT_GE(items.size(), 3u);
      EXPECT_LE(items.size(), 12u);
      ASSERT_EQ(items.size(), cates.size());
      for (size_t l = 0; l < items.size(); ++l) {
        EXPECT_GE(items[l], 0);
        EXPECT_LT(items[l], 2000);
        EXPECT_EQ(cates[l], items[l] % 20);
      }
      int64_t item, cate;
      ASSERT_TRUE(absl::SimpleAtoi(cells[2], &item));
      ASSERT_TRUE(absl::SimpleAtoi(cells[3], &cate));
      EXPECT_EQ(cate, item % 20);
    }
  }
}

TEST(SequenceDatagenTest, SameSeedSameOutputOtherSeedOtherOutput) {
  const std::string dir = NewTempDir();
  SequenceDatagenOptions o = Small(500);
  o.splits = {1};
  ASSERT_TRUE(WriteSequenceData(o, dir + "/a.csv").ok());
  ASSERT_TRUE(WriteSequenceData(o, dir + "/b.csv").ok());
  o.seed += 1;
  ASSERT_TRUE(WriteSequenceData(o, dir + "/c.csv").ok());
  EXPECT_EQ(ReadLines(dir + "/a.csv"), ReadLines(dir + "/b.csv"));
  EXPECT_EQ(ReadLines(dir + "/a.csv.prob"), ReadLines(dir + "/b.csv.prob"));
  EXPECT_NE(ReadLines(dir + "/a.csv"), ReadLines(dir + "/c.csv"));
}

TEST(SequenceDatagenTest, FixedHistoryLengthWhenMinEqualsMax) {
  SequenceDatagenOptions o = Small(100);
  o.min_history = o.max_history = 7;
  auto gen = SequenceGenerator::Create(o);
  ASSERT_TRUE(gen.ok()) << gen.status();
  SequenceRow row;
  for (int i = 0; i < 100; ++i) {
    (*gen)->Next(&row);
    EXPECT_EQ(row.history.size(), 7u);
  }
}

TEST(SequenceDatagenTest, HistoriesComeFromTheUsersInterests) {
  SequenceDatagenOptions o = Small(0);
  o.history_noise = 0.1;
  auto gen = SequenceGenerator::Create(o);
  ASSERT_TRUE(gen.ok()) << gen.status();
  SequenceRow row;
  int64_t in_interest = 0, total = 0;
  for (int i = 0; i < 2000; ++i) {
    (*gen)->Next(&row);
    const std::vector<int> interests = (*gen)->Interests(row.user);
    EXPECT_GE(interests.size(), 2u);
    EXPECT_LE(interests.size(), 4u);
    for (int32_t item : row.history) {
      in_interest += std::count(interests.begin(), interests.end(), (*gen)->category(item));
      ++total;
    }
  }
  // 90% from the interests, plus the random 10% that land in one (3 of 20).
  EXPECT_NEAR(static_cast<double>(in_interest) / total, 0.9 + 0.1 * 3.0 / 20, 0.02);
}

TEST(SequenceDatagenTest, CtrIsCalibratedAndTheHistoryPredictsClicks) {
  SequenceDatagenOptions o = Small(0);
  o.target_ctr = 0.25;
  auto gen = SequenceGenerator::Create(o);
  ASSERT_TRUE(gen.ok()) << gen.status();
  SequenceRow row;
  std::vector<float> prob, overlap, affinity;
  std::vector<uint8_t> labels;
  double clicks = 0;
  for (int i = 0; i < 20000; ++i) {
    (*gen)->Next(&row);
    prob.push_back(row.prob);
    labels.push_back(static_cast<uint8_t>(row.label));
    clicks += row.label;
    // What a model can see: how much of the history shares the target's category.
    const int cate = (*gen)->category(row.item);
    overlap.push_back(
        static_cast<float>(std::count_if(row.history.begin(), row.history.end(),
                                         [&](int32_t h) { return (*gen)->category(h) == cate; })) /
        row.history.size());
    affinity.push_back(static_cast<float>((*gen)->Affinity(row.user, row.item)));
  }
  EXPECT_NEAR(clicks / 20000, 0.25, 0.015);
  const double oracle = ExactAuc(prob, labels);
  EXPECT_GT(oracle, 0.75);
  EXPECT_GT(ExactAuc(overlap, labels), 0.65);
  EXPECT_LT(ExactAuc(overlap, labels), oracle);
  EXPECT_GT(ExactAuc(affinity, labels), 0.7);
}

TEST(SequenceDatagenTest, ReaderReadsTheCsvWithSequenceFeatures) {
  const std::string dir = NewTempDir();
  SequenceDatagenOptions o = Small(300);
  o.splits = {1};
  const std::string path = dir + "/seq.csv";
  ASSERT_TRUE(WriteSequenceData(o, path).ok());
  constexpr int kMaxLen = 8;  // shorter than the longest histories: the last 8 are kept
  const DataConfig data = ParseData(absl::StrCat(R"(
    format: CSV
    feature { name: "user" table: "user" hash_as: "user" }
    feature { name: "item" table: "item" hash_as: "item" }
    feature { name: "cate" table: "cate" hash_as: "cate" }
    feature { name: "hist_items" kind: SEQUENCE table: "item" hash_as: "item" separator: "^"
              max_len: )",
                                                 kMaxLen, R"( target: "item" }
    feature { name: "hist_cates" kind: SEQUENCE table: "cate" hash_as: "cate" separator: "^"
              max_len: )",
                                                 kMaxLen, R"( target: "cate" }
  )"));
  ReaderOptions options;
  options.files = {path};
  options.batch_size = 64;
  Reader reader(data, options);
  ASSERT_TRUE(reader.Start().ok());
  const std::vector<std::string> lines = ReadLines(path);
  const uint64_t item_hash = HashBytes("item"), cate_hash = HashBytes("cate");
  Batch batch;
  size_t line = 1;
  for (;;) {
    absl::StatusOr<ReadEvent> e = reader.Next(&batch, absl::Seconds(10));
    ASSERT_TRUE(e.ok()) << e.status();
    if (*e == ReadEvent::kEndOfData) break;
    if (*e != ReadEvent::kBatch) continue;
    for (int b = 0; b < batch.size; ++b, ++line) {
      ASSERT_LT(line, lines.size());
      std::vector<std::string> cells = absl::StrSplit(lines[line], ',');
      EXPECT_EQ(batch.label(b), cells[0] == "1" ? 1.0f : 0.0f);
      // The target and its history hash alike (shared hash_as).
      EXPECT_EQ(batch.fields[1].keys[b], FeatureKey(item_hash, cells[2]));
      EXPECT_EQ(batch.fields[2].keys[b], FeatureKey(cate_hash, cells[3]));
      std::vector<std::string> items = absl::StrSplit(cells[4], '^');
      std::vector<std::string> cates = absl::StrSplit(cells[5], '^');
      const int n = std::min<int>(items.size(), kMaxLen);
      const FieldBatch& hist = batch.fields[3];
      const FieldBatch& hist_c = batch.fields[4];
      ASSERT_EQ(hist.num_keys(b), n);
      ASSERT_EQ(hist_c.num_keys(b), n);
      for (int l = 0; l < n; ++l) {
        const size_t from = items.size() - n + l;  // most recent last
        EXPECT_EQ(hist.keys[hist.offsets[b] + l], FeatureKey(item_hash, items[from]));
        EXPECT_EQ(hist_c.keys[hist_c.offsets[b] + l], FeatureKey(cate_hash, cates[from]));
      }
    }
  }
  EXPECT_EQ(line, lines.size());
  EXPECT_EQ(reader.stats().samples, 300);
  EXPECT_EQ(reader.stats().bad_lines, 0);
}

TEST(SequenceDatagenTest, BadOptionsAreInvalidArgument) {
  auto code = [](SequenceDatagenOptions o) { return SequenceGenerator::Create(o).status().code(); };
  std::vector<SequenceDatagenOptions> bad(8, Small(10));
  bad[0].min_history = 20;  // > max_history
  bad[1].items = 10;        // < categories
  bad[2].max_interests = 30;
  bad[3].min_interests = 0;
  bad[4].target_ctr = 1.0;
  bad[5].factor_dim = 0;
  bad[6].near_target_fraction = 1.5;
  bad[7].users = 0;
  for (size_t i = 0; i < bad.size(); ++i) {
    EXPECT_EQ(code(bad[i]), absl::StatusCode::kInvalidArgument) << i;
  }
  SequenceDatagenOptions o = Small(10);
  o.splits = {};
  EXPECT_EQ(WriteSequenceData(o, "/tmp/x").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ctrps
