#include "ps/key_index.h"

#include <cstdio>
#include <random>
#include <unordered_map>
#include <vector>

#include "common/hash.h"
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
  for (uint32_t k = 0; k < 4096; ++k)
    ASSERT_EQ(index.Find(k), k % 64 == 0 ? k + 1 : KeyIndex::kNone) << k;
}

// Keys whose home lines are full go on to later lines; erasing keys from
// the middle of such chains, and shrinking, must keep every other key
// findable.
TEST(KeyIndexTest, KeysPassedOnFromFullLinesStayFindableAsOthersLeave) {
  KeyIndex index;
  std::unordered_map<uint64_t, uint32_t> ref;
  std::mt19937_64 rng(11);
  for (int round = 0; round < 50; ++round) {
    for (int i = 0; i < 40; ++i) {
      uint64_t key = rng();
      index.Set(key, static_cast<uint32_t>(i));
      ref[key] = static_cast<uint32_t>(i);
    }
    // Erase most keys, in an order unrelated to insertion, then shrink, so
    // that the index stays a few lines long and its lines pass keys on.
    int n = 0;
    for (auto it = ref.begin(); it != ref.end();) {
      if (n++ % 4 != 0) {
        index.Erase(it->first);
        it = ref.erase(it);
      } else {
        ++it;
      }
    }
    index.ShrinkIfSparse();
    for (auto& [k, v] : ref) ASSERT_EQ(index.Find(k), v) << "round " << round;
    ASSERT_EQ(index.Find(rng()), KeyIndex::kNone);
  }
  EXPECT_EQ(index.size(), ref.size());
  EXPECT_LE(index.capacity(), 16 * KeyIndex::kPerLine);
}

// Erases can leave every line counting keys passed on while all have room;
// a lookup, insert or erase of an absent key must still end (they once
// went round the lines for ever).
TEST(KeyIndexTest, LookupsEndWhenEveryLineCountsKeysPassedOn) {
  KeyIndex index;
  ASSERT_EQ(index.capacity(), 4 * KeyIndex::kPerLine);  // lines 0-3
  uint64_t next = 1;
  auto homed_at = [&](uint64_t line) {
    while ((Mix64(next) & 3) != line) ++next;
    return next++;
  };
  std::unordered_map<uint64_t, uint32_t> kept;
  for (uint64_t h = 0; h < 4; ++h) {
    // Fill line h (it holds the key line h - 1 passed on, if any), pass one
    // more key on to line h + 1 (from line 3 round to line 0), then empty
    // line h of its own keys but the one passed on into it.
    std::vector<uint64_t> fill;
    for (int i = h == 0 ? 0 : 1; i < KeyIndex::kPerLine; ++i) {
      fill.push_back(homed_at(h));
      index.Set(fill.back(), 1);
    }
    const uint64_t passed = homed_at(h);
    index.Set(passed, 2);
    kept[passed] = 2;
    for (uint64_t k : fill) {
      if (h < 3) {
        index.Erase(k);
      } else {
        kept[k] = 1;
      }
    }
  }
  ASSERT_LT(index.size() * 2, index.capacity());  // no growth yet to recount
  const uint64_t absent = homed_at(1), other = homed_at(2);
  EXPECT_EQ(index.Find(absent), KeyIndex::kNone);
  EXPECT_EQ(index.FindPastHome(absent), KeyIndex::kNone);
  index.Erase(other);
  index.Set(absent, 7);
  kept[absent] = 7;
  for (auto& [k, v] : kept) EXPECT_EQ(index.Find(k), v);
  EXPECT_EQ(index.size(), kept.size());
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
  for (uint32_t k = 0; k < n; k += 97)
    ASSERT_EQ(index.Find(uint64_t{k} * 0x9e3779b97f4a7c15ULL), k);
  // 16-byte buckets grown at load 1/2 took 2^21 buckets, 32 MiB, for these.
  EXPECT_LE(index.bytes(), size_t{16} << 20);
  EXPECT_LE(index.size() * 2, index.capacity());
}

// How often a lookup has to read past the home line: for a key present,
// when it sits past its home; for a key absent, when its home passed keys
// on. Printed, for docs/BENCHMARKS.md and the header's figures.
TEST(KeyIndexTest, FewLookupsReadPastTheirHomeLine) {
  struct Case {
    uint32_t keys;
    double most_past_home, most_lines_passing;
  };
  // A 10M-row table's stripe (load 0.48), and load 1/2 just before growth.
  for (const Case& c : {Case{625000, 0.03, 0.05}, Case{327680, 0.035, 0.065}}) {
    KeyIndex index;
    std::mt19937_64 rng(c.keys);
    std::vector<uint64_t> keys(c.keys);
    for (uint32_t i = 0; i < c.keys; ++i) {
      keys[i] = rng();
      index.Set(keys[i], i);
    }
    ASSERT_LE(index.size() * 2, index.capacity());
    uint32_t past_home = 0, passing = 0;
    for (uint64_t key : keys) past_home += index.FindInHome(key) == KeyIndex::kFurther;
    constexpr int kAbsent = 200000;
    for (int i = 0; i < kAbsent; ++i) passing += index.FindInHome(rng()) == KeyIndex::kFurther;
    const double load = static_cast<double>(index.size()) / index.capacity();
    std::printf(
        "%u keys, load %.3f: %.2f%% of keys past their home line, %.2f%% of homes passed keys on\n",
        c.keys, load, 100.0 * past_home / c.keys, 100.0 * passing / kAbsent);
    EXPECT_LT(past_home, c.most_past_home * c.keys);
    EXPECT_LT(passing, c.most_lines_passing * kAbsent);
  }
}

}  // namespace
}  // namespace ctrps
