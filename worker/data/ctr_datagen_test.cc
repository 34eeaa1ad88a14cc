#include "worker/data/ctr_datagen.h"

#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "worker/data/data_test_util.h"
#include "worker/data/reader.h"

namespace ctrps {
namespace {

using testing_util::NewTempDir;
using testing_util::ReadLines;

DatagenOptions Small(int64_t rows) {
  DatagenOptions o;
  o.rows = rows;
  o.max_cardinality = 10000;
  return o;
}

std::string ReadText(const std::string& path) {
  std::string out;
  for (const std::string& line : ReadLines(path)) absl::StrAppend(&out, line, "\n");
  return out;
}

TEST(ExactAucTest, MatchesHandComputedValues) {
  EXPECT_DOUBLE_EQ(ExactAuc({0.1f, 0.2f, 0.8f, 0.9f}, {0, 0, 1, 1}), 1.0);
  EXPECT_DOUBLE_EQ(ExactAuc({0.9f, 0.8f, 0.2f, 0.1f}, {0, 0, 1, 1}), 0.0);
  EXPECT_DOUBLE_EQ(ExactAuc({0.5f, 0.5f, 0.5f, 0.5f}, {0, 1, 0, 1}), 0.5);
  // Pairs (pos, neg): (0.4 vs 0.1, 0.35, 0.8) and (0.9 vs all three):
  // 2 + 3 = 5 of 6.
  EXPECT_DOUBLE_EQ(ExactAuc({0.1f, 0.4f, 0.35f, 0.8f, 0.9f}, {0, 1, 0, 0, 1}), 5.0 / 6.0);
  // A tie between a positive and a negative counts one half.
  EXPECT_DOUBLE_EQ(ExactAuc({0.3f, 0.3f, 0.1f}, {1, 0, 0}), 0.75);
  EXPECT_TRUE(std::isnan(ExactAuc({0.1f, 0.2f}, {1, 1})));
}

TEST(CtrDatagenTest, SameSeedSameOutputOtherSeedOtherOutput) {
  const std::string dir = NewTempDir();
  DatagenOptions o = Small(3000);
  ASSERT_TRUE(WriteCtrData(o, dir + "/a").ok());
  ASSERT_TRUE(WriteCtrData(o, dir + "/b").ok());
  o.seed += 1;
  ASSERT_TRUE(WriteCtrData(o, dir + "/c").ok());
  for (const char* split : {".train.tsv", ".valid.tsv", ".test.tsv"}) {
    EXPECT_EQ(ReadText(dir + "/a" + split), ReadText(dir + "/b" + split)) << split;
    EXPECT_EQ(ReadText(dir + "/a" + split + ".prob"), ReadText(dir + "/b" + split + ".prob"));
    EXPECT_NE(ReadText(dir + "/a" + split), ReadText(dir + "/c" + split)) << split;
  }
}

TEST(CtrDatagenTest, WritesSplitsWithProbabilitySideFiles) {
  const std::string dir = NewTempDir();
  auto report = WriteCtrData(Small(1000), dir + "/sub/dir/d");
  ASSERT_TRUE(report.ok()) << report.status();
  ASSERT_EQ(report->files.size(), 3u);
  const std::vector<int64_t> rows = {800, 100, 100};
  for (int s = 0; s < 3; ++s) {
    const DatagenFileReport& f = report->files[s];
    EXPECT_EQ(f.rows, rows[s]);
    EXPECT_EQ(ReadLines(f.path).size(), static_cast<size_t>(rows[s])) << f.path;
    const std::vector<std::string> probs = ReadLines(f.path + ".prob");
    ASSERT_EQ(probs.size(), static_cast<size_t>(rows[s]));
    for (const std::string& p : probs) {
      double v;
      ASSERT_TRUE(absl::SimpleAtod(p, &v)) << p;
      EXPECT_GE(v, 0);
      EXPECT_LE(v, 1);
    }
  }
  EXPECT_EQ(report->files[1].path, dir + "/sub/dir/d.valid.tsv");

  DatagenOptions one = Small(10);
  one.splits = {1};
  report = WriteCtrData(one, dir + "/one.tsv");
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(ReadLines(dir + "/one.tsv").size(), 10u);
  EXPECT_EQ(ReadLines(dir + "/one.tsv.prob").size(), 10u);
}

TEST(CtrDatagenTest, OutputReadsAsCriteoTsvWithoutBadLines) {
  const std::string dir = NewTempDir();
  DatagenOptions o = Small(2000);
  o.splits = {1};
  ASSERT_TRUE(WriteCtrData(o, dir + "/d.tsv").ok());
  DataConfig data;
  data.set_format(DataConfig::CRITEO_TSV);
  for (int i = 1; i <= 13; ++i) {
    FeatureConfig* f = data.add_feature();
    f->set_name(absl::StrCat("I", i));
    f->set_kind(FeatureConfig::BUCKETIZED);
  }
  for (int i = 1; i <= 26; ++i) data.add_feature()->set_name(absl::StrCat("C", i));
  ReaderOptions options;
  options.files = {dir + "/d.tsv"};
  options.batch_size = 512;
  options.max_bad_line_rate = 0;
  Reader reader(data, options);
  ASSERT_TRUE(reader.Start().ok());
  Batch batch;
  int rows = 0;
  double clicks = 0;
  while (true) {
    auto e = reader.Next(&batch, absl::Seconds(10));
    ASSERT_TRUE(e.ok()) << e.status();
    if (*e != ReadEvent::kBatch) break;
    rows += batch.size;
    for (float l : batch.labels) clicks += l;
  }
  EXPECT_EQ(rows, 2000);
  EXPECT_EQ(reader.stats().bad_lines, 0);
  EXPECT_GT(clicks, 0);
}

TEST(CtrDatagenTest, CtrNearTargetAndOracleAucHigh) {
  const std::string dir = NewTempDir();
  DatagenOptions o = Small(40000);
  o.splits = {1};
  auto report = WriteCtrData(o, dir + "/d.tsv");
  ASSERT_TRUE(report.ok()) << report.status();
  const DatagenFileReport& f = report->files[0];
  EXPECT_NEAR(f.mean_prob, 0.22, 0.02);
  EXPECT_NEAR(f.ctr, 0.22, 0.02);
  EXPECT_GT(f.oracle_auc, 0.78);
  EXPECT_LT(f.oracle_auc, 0.92);
}

TEST(CtrDatagenTest, InteractionStrengthChangesOnlyTheProbabilities) {
  DatagenOptions o = Small(0);
  auto with = CtrGenerator::Create(o);
  o.interaction_strength = 0;
  auto without = CtrGenerator::Create(o);
  ASSERT_TRUE(with.ok() && without.ok());
  CtrRow a, b;
  double diff = 0;
  for (int i = 0; i < 1000; ++i) {
    (*with)->Next(&a);
    (*without)->Next(&b);
    for (int f = 0; f < kCriteoCatColumns; ++f) ASSERT_EQ(a.cats[f], b.cats[f]);
    for (int j = 0; j < kCriteoIntColumns; ++j) ASSERT_EQ(a.ints[j], b.ints[j]);
    diff += std::fabs((*with)->Logit(a) - (*without)->Logit(b));
  }
  EXPECT_GT(diff / 1000, 0.3);  // the interaction term has unit scale
}

// The mixed differences of the logit over the values of fields a, b (and c):
// zero where the fields do not interact, and the third order is always zero
// (the planted interactions are pairwise).
double MixedDifference(const CtrGenerator& gen, CtrRow row, const std::vector<int>& fields) {
  double total = 0;
  for (int mask = 0; mask < (1 << fields.size()); ++mask) {
    CtrRow r = row;
    int sign = 1;
    for (size_t i = 0; i < fields.size(); ++i) {
      if (mask & (1 << i)) {
        r.cats[fields[i]] = 7;  // the other value; the row has 3 everywhere
      } else {
        sign = -sign;
      }
    }
    total += sign * gen.Logit(r);
  }
  return total;
}

TEST(CtrDatagenTest, CliqueInteractsEveryPairOfItsFieldsAndPairsOnlyTheListedOnes) {
  DatagenOptions o = Small(0);
  auto clique = CtrGenerator::Create(o);
  o.interactions = Interactions::kPairs;
  auto pairs = CtrGenerator::Create(o);
  ASSERT_TRUE(clique.ok() && pairs.ok());
  CtrRow row;
  (*clique)->Next(&row);
  for (int f = 0; f < kCriteoCatColumns; ++f) row.cats[f] = 3;
  // C1 x C2 is a listed pair; C1 x C3 is not, but both are clique fields;
  // C9 (index 8) is in no pair at all.
  EXPECT_GT(std::fabs(MixedDifference(**clique, row, {0, 1})), 1e-4);
  EXPECT_GT(std::fabs(MixedDifference(**clique, row, {0, 2})), 1e-4);
  EXPECT_NEAR(MixedDifference(**clique, row, {0, 8}), 0, 1e-9);
  EXPECT_GT(std::fabs(MixedDifference(**pairs, row, {0, 1})), 1e-4);
  EXPECT_NEAR(MixedDifference(**pairs, row, {0, 2}), 0, 1e-9);
  EXPECT_NEAR(MixedDifference(**clique, row, {0, 1, 2}), 0, 1e-9);
  EXPECT_NEAR(MixedDifference(**pairs, row, {0, 1, 13}), 0, 1e-9);
}

TEST(CtrDatagenTest, CategoricalValuesFollowZipfWithCappedCardinality) {
  DatagenOptions o = Small(0);
  o.max_cardinality = 5000;
  auto gen = CtrGenerator::Create(o);
  ASSERT_TRUE(gen.ok());
  EXPECT_EQ((*gen)->cardinality(0), 1460);  // C1 below the cap
  EXPECT_EQ((*gen)->cardinality(2), 5000);  // C3 (10M in Criteo) capped
  constexpr int kRows = 200000;
  std::vector<int> counts(1460);
  CtrRow row;
  for (int i = 0; i < kRows; ++i) {
    (*gen)->Next(&row);
    ASSERT_GE(row.cats[0], 0);
    ASSERT_LT(row.cats[0], 1460);
    ASSERT_LT(row.cats[2], 5000);
    ++counts[row.cats[0]];
  }
  double h = 0;
  for (int k = 1; k <= 1460; ++k) h += std::pow(k, -o.zipf_exponent);
  for (int k : {0, 1, 9}) {
    const double expected = kRows * std::pow(k + 1, -o.zipf_exponent) / h;
    EXPECT_NEAR(counts[k], expected, 5 * std::sqrt(expected)) << "rank " << k;
  }
  std::set<std::string> hex;
  for (int v = 0; v < 5000; ++v) {
    const std::string s = (*gen)->HexValue(2, v);
    ASSERT_EQ(s.size(), 8u);
    hex.insert(s);
  }
  EXPECT_EQ(hex.size(), 5000u);  // distinct ids, distinct strings
}

TEST(CtrDatagenTest, BadOptionsAreRejected) {
  DatagenOptions o = Small(10);
  o.max_cardinality = 1;
  EXPECT_EQ(WriteCtrData(o, "/tmp/x").status().code(), absl::StatusCode::kInvalidArgument);
  o = Small(10);
  o.target_ctr = 1.5;
  EXPECT_FALSE(CtrGenerator::Create(o).ok());
  o = Small(10);
  o.splits = {0.5, 0.5, 0, 1};
  EXPECT_FALSE(WriteCtrData(o, "/tmp/x").ok());
  o = Small(10);
  o.splits = {1};
  EXPECT_FALSE(WriteCtrData(o, "/proc/no/such/dir/x").ok());
}

}  // namespace
}  // namespace ctrps
