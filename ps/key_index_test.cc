#include "ps/key_index.h"

#include <random>
#include <unordered_map>
#include <vector>

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

// Keys whose home lines are full go on to later lines; erasing keys from
// the middle of such chains must keep every other key findable.
TEST(KeyIndexTest, KeysPassedOnFromFullLinesStayFindableAsOthersLeave) {
  KeyIndex index;
  // 4 lines of 5 entries at first: 10 keys fit before growth, so many homes
  // overflow at every size below.
  std::unordered_map<uint64_t, uint32_t> ref;
  std::mt19937_64 rng(11);
  for (int round = 0; round < 50; ++round) {
    for (int i = 0; i < 40; ++i) {
      uint64_t key = rng();
      index.Set(key, static_cast<uint32_t>(i));
      ref[key] = static_cast<uint32_t>(i);
    }
    // Erase every other key, in an order unrelated to insertion.
    int n = 0;
    for (auto it = ref.begin(); it != ref.end();) {
      if (n++ % 2 == 0) {
        index.Erase(it->first);
        it = ref.erase(it);
      } else {
        ++it;
      }
    }
    for (auto& [k, v] : ref) ASSERT_EQ(index.Find(k), v) << "round " << round;
    ASSERT_EQ(index.Find(rng()), KeyIndex::kNone);
  }
  EXPECT_EQ(index.size(), ref.size());
}

// The two-step lookup agrees with Find, and at this load some keys take
// the second step, present and absent alike.
TEST(KeyIndexTest, LookupInTwoStepsFindsWhatFindFinds) {
  KeyIndex index;
  std::mt19937_64 rng(5);
  std::vector<uint64_t> keys;
  for (uint32_t i = 0; i < 20000; ++i) {
    keys.push_back(rng());
    index.Set(keys.back(), i);
  }
  int further_present = 0, further_absent = 0;
  auto two_steps = [&](uint64_t key, int* further) {
    const uint32_t home = index.FindInHome(key);
    if (home != KeyIndex::kFurther) return home;
    ++*further;
    return index.FindPastHome(key);
  };
  for (uint32_t i = 0; i < keys.size(); ++i) ASSERT_EQ(two_steps(keys[i], &further_present), i);
  for (int i = 0; i < 20000; ++i) ASSERT_EQ(two_steps(rng(), &further_absent), KeyIndex::kNone);
  EXPECT_GT(further_present, 0);
  EXPECT_GT(further_absent, 0);
}

TEST(KeyIndexTest, HoldsAStripesShareOfTenMillionKeysInHalfTheBytesOfTheProbingIndex) {
  KeyIndex index;
  const uint32_t n = 625000;  // one stripe's share of a 10M-row table
  for (uint32_t k = 0; k < n; ++k) index.Set(uint64_t{k} * 0x9e3779b97f4a7c15ULL, k);
  for (uint32_t k = 0; k < n; k += 97) ASSERT_EQ(index.Find(uint64_t{k} * 0x9e3779b97f4a7c15ULL), k);
  // 16-byte buckets grown at load 1/2 took 2^21 buckets, 32 MiB, for these.
  EXPECT_LE(index.bytes(), size_t{16} << 20);
  EXPECT_LE(index.size() * 2, index.capacity());
}

}  // namespace
}  // namespace ctrps
