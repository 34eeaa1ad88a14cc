#include "ps/key_index.h"

#include <random>
#include <unordered_map>

#include "gtest/gtest.h"

namespace ctrps {
namespace {

TEST(KeyIndexTest, MatchesAReferenceMapUnderRandomOperations) {
  KeyIndex index;
  std::unordered_map<uint64_t, uint32_t> ref;
  std::mt19937_64 rng(7);
  for (int op = 0; op < 200000; ++op) {
    uint64_t key = rng() % 5000;  // small key space: many collisions, erases, re-inserts
    switch (rng() % 3) {
      case 0: {
        uint32_t slot = static_cast<uint32_t>(rng() % 100000);
        index.Set(key, slot);
        ref[key] = slot;
        break;
      }
      case 1:
        index.Erase(key);
        ref.erase(key);
        break;
      default: {
        auto it = ref.find(key);
        ASSERT_EQ(index.Find(key), it == ref.end() ? KeyIndex::kNone : it->second) << "op " << op;
      }
    }
    ASSERT_EQ(index.size(), ref.size());
  }
  for (auto& [k, v] : ref) ASSERT_EQ(index.Find(k), v);
  EXPECT_LE(index.size() * 2, index.capacity());
}

TEST(KeyIndexTest, AnyKeyValueWorksIncludingZeroAndMax) {
  KeyIndex index;
  index.Set(0, 1);
  index.Set(~0ull, 2);
  EXPECT_EQ(index.Find(0), 1u);
  EXPECT_EQ(index.Find(~0ull), 2u);
  index.Erase(0);
  EXPECT_EQ(index.Find(0), KeyIndex::kNone);
  EXPECT_EQ(index.Find(~0ull), 2u);
}

TEST(KeyIndexTest, ShrinksWhenMostKeysLeaveAndKeepsTheRest) {
  KeyIndex index;
  for (uint32_t k = 0; k < 4096; ++k) index.Set(k, k + 1);
  const size_t full = index.capacity();
  EXPECT_FALSE(index.ShrinkIfSparse());
  for (uint32_t k = 0; k < 4096; ++k) {
    if (k % 64 != 0) index.Erase(k);
  }
  ASSERT_TRUE(index.ShrinkIfSparse());
  EXPECT_LT(index.capacity(), full);
  EXPECT_LE(index.size() * 4, index.capacity());  // not about to grow again
  EXPECT_GE(index.size() * 8, index.capacity());
  for (uint32_t k = 0; k < 4096; ++k) ASSERT_EQ(index.Find(k), k % 64 == 0 ? k + 1 : KeyIndex::kNone) << k;
}

}  // namespace
}  // namespace ctrps
