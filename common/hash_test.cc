#include "common/hash.h"

#include <vector>

#include "gtest/gtest.h"

namespace ctrps {
namespace {

TEST(HashTest, FeatureKeyDependsOnFieldAndValue) {
  uint64_t a = HashBytes("user"), b = HashBytes("item");
  EXPECT_NE(FeatureKey(a, "42"), FeatureKey(b, "42"));
  EXPECT_NE(FeatureKey(a, "42"), FeatureKey(a, "43"));
  EXPECT_EQ(FeatureKey(a, "42"), FeatureKey(HashBytes("user"), "42"));
}

TEST(HashTest, ShardsAreBalancedForSequentialKeys) {
  const uint32_t kShards = 3;
  std::vector<int> count(kShards, 0);
  const int kKeys = 300000;
  for (int i = 0; i < kKeys; ++i) ++count[ShardOf(i, kShards)];
  for (int c : count) EXPECT_NEAR(c, kKeys / kShards, kKeys / kShards * 0.02);
}

TEST(HashTest, ValuesArePinned) {
  // Checkpoints depend on these; a change here must be deliberate.
  EXPECT_EQ(Mix64(0), 0xe220a8397b1dcdafULL);
  EXPECT_EQ(ShardOf(12345, 1), 0u);
}

}  // namespace
}  // namespace ctrps
