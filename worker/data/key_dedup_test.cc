#include "worker/data/key_dedup.h"

#include <cstdint>
#include <map>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "worker/data/data_test_util.h"

namespace ctrps {
namespace {

using testing_util::ParseData;

// Fields: item (table item), hist (table item), user (table user).
DataConfig ThreeFields() {
  return ParseData(R"(
    feature { name: "item" }
    feature { name: "hist" kind: SEQUENCE table: "item" }
    feature { name: "user" }
  )");
}

void SetField(FieldBatch* f, std::vector<uint64_t> keys, std::vector<int32_t> offsets) {
  f->keys = std::move(keys);
  f->offsets = std::move(offsets);
}

TEST(KeyIndexMapTest, AssignsDenseIndicesAndClearsInConstantTime) {
  KeyIndexMap map;
  for (int round = 0; round < 3; ++round) {
    map.Clear(4);
    bool inserted;
    EXPECT_EQ(map.FindOrInsert(100, &inserted), 0);
    EXPECT_TRUE(inserted);
    EXPECT_EQ(map.FindOrInsert(7, &inserted), 1);
    EXPECT_EQ(map.FindOrInsert(100, &inserted), 0);
    EXPECT_FALSE(inserted);
    EXPECT_EQ(map.size(), 2);
  }
}

TEST(KeyIndexMapTest, GrowsPastItsReservation) {
  KeyIndexMap map;
  map.Clear(1);
  bool inserted;
  for (uint64_t k = 0; k < 10000; ++k) ASSERT_EQ(map.FindOrInsert(k * 4096, &inserted), k);
  for (uint64_t k = 0; k < 10000; ++k) {
    ASSERT_EQ(map.FindOrInsert(k * 4096, &inserted), k);
    ASSERT_FALSE(inserted);
  }
}

TEST(KeyDedupTest, FieldsSharingATableAreDeduplicatedTogether) {
  KeyDedup dedup(ThreeFields());
  ASSERT_EQ(dedup.tables().size(), 2u);
  Batch batch;
  batch.Reset(3, 1);
  batch.size = 2;
  SetField(&batch.fields[0], {5, 6}, {0, 1, 2});
  SetField(&batch.fields[1], {6, 9, 5, 5}, {0, 3, 4});
  SetField(&batch.fields[2], {1, 1}, {0, 1, 2});
  dedup.Run(batch);

  const TableKeys& item = dedup.tables()[0];
  EXPECT_EQ(item.name, "item");
  EXPECT_EQ(item.fields, (std::vector<int>{0, 1}));
  EXPECT_EQ(item.unique_keys, (std::vector<uint64_t>{5, 6, 9}));
  EXPECT_EQ(item.counts, (std::vector<int32_t>{3, 2, 1}));
  EXPECT_EQ(item.field_begin, (std::vector<int32_t>{0, 2, 6}));
  EXPECT_EQ(item.index, (std::vector<int32_t>{0, 1, 1, 2, 0, 0}));

  const TableKeys& user = dedup.tables()[1];
  EXPECT_EQ(user.fields, (std::vector<int>{2}));
  EXPECT_EQ(user.unique_keys, (std::vector<uint64_t>{1}));
  EXPECT_EQ(user.index, (std::vector<int32_t>{0, 0}));
}

TEST(KeyDedupTest, ReusedAcrossBatchesWithoutStaleKeys) {
  KeyDedup dedup(ThreeFields());
  Batch batch;
  batch.Reset(3, 1);
  std::mt19937_64 rng(7);
  for (int round = 0; round < 20; ++round) {
    const int n = 1 + static_cast<int>(rng() % 3000);
    for (FieldBatch& f : batch.fields) {
      f.Clear();
      for (int i = 0; i < n; ++i) {
        f.keys.push_back(rng() % (round % 2 ? 50 : 100000));
        f.offsets.push_back(i + 1);
      }
    }
    batch.size = n;
    dedup.Run(batch);
    for (const TableKeys& t : dedup.tables()) {
      std::map<uint64_t, int> expected_counts;
      int o = 0;
      for (int f : t.fields) {
        for (uint64_t key : batch.fields[f].keys) {
          ++expected_counts[key];
          ASSERT_EQ(t.unique_keys[t.index[o++]], key);
        }
      }
      ASSERT_EQ(t.unique_keys.size(), expected_counts.size());
      for (size_t u = 0; u < t.unique_keys.size(); ++u) {
        ASSERT_EQ(t.counts[u], expected_counts[t.unique_keys[u]]);
      }
    }
  }
}

TEST(KeyDedupTest, GradientsAreSummedPerUniqueKeyExactly) {
  KeyDedup dedup(ThreeFields());
  Batch batch;
  batch.Reset(3, 1);
  batch.size = 2;
  SetField(&batch.fields[0], {5, 6}, {0, 1, 2});
  SetField(&batch.fields[1], {6, 9, 5, 5}, {0, 3, 4});
  SetField(&batch.fields[2], {1, 1}, {0, 1, 2});
  dedup.Run(batch);
  const TableKeys& item = dedup.tables()[0];  // unique 5, 6, 9
  const int dim = 2;
  // Occurrence order: item[5, 6], hist[6, 9, 5, 5].
  const std::vector<float> occ = {1, 10, 2, 20, 3, 30, 4, 40, 5, 50, 6, 60};
  std::vector<float> sum(item.unique_keys.size() * dim, -1);
  SumGradients(item, occ.data(), dim, sum.data());
  EXPECT_EQ(sum, (std::vector<float>{1 + 5 + 6, 10 + 50 + 60, 2 + 3, 20 + 30, 4, 40}));

  // The same through per-field accumulation.
  std::vector<float> acc(item.unique_keys.size() * dim, 0);
  AccumulateFieldGradients(item, 0, occ.data(), dim, acc.data());
  AccumulateFieldGradients(item, 1, occ.data() + 2 * dim, dim, acc.data());
  EXPECT_EQ(acc, sum);

  // And the forward direction.
  const std::vector<float> rows = {0.5f, 0.25f, 1, 2, 3, 4};
  std::vector<float> hist(4 * dim);
  GatherRows(item, 1, rows.data(), dim, hist.data());
  EXPECT_EQ(hist, (std::vector<float>{1, 2, 3, 4, 0.5f, 0.25f, 0.5f, 0.25f}));
}

}  // namespace
}  // namespace ctrps
