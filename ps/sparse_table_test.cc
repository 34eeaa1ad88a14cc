#include "ps/sparse_table.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "ps/file_size_limit_for_test.h"
#include "ps/kv_store.h"
#include "worker/nn/tensor.h"

namespace ctrps {
namespace {

TableConfig Config(int dim, SparseOptimizerConfig::Kind kind = SparseOptimizerConfig::SGD) {
  TableConfig t;
  t.set_name("emb");
  t.set_dim(dim);
  t.mutable_init()->set_kind(InitializerConfig::UNIFORM);
  t.mutable_init()->set_scale(0.5f);
  t.mutable_optimizer()->set_kind(kind);
  t.mutable_optimizer()->set_learning_rate(0.1f);
  return t;
}

std::unique_ptr<SparseTable> Make(const TableConfig& config, SparseTable::Options options = {}) {
  auto t = SparseTable::Create(config, options);
  EXPECT_TRUE(t.ok()) << t.status();
  return std::move(*t);
}

TEST(SparseTableTest, PullOfNewKeyReturnsInitialValueWithoutCreatingRow) {
  TableConfig c = Config(4);
  auto table = Make(c);
  std::vector<uint64_t> keys = {11, 12, 11};
  std::vector<float> out(12);
  ASSERT_TRUE(table->Pull(keys, out.data()).ok());
  std::vector<float> expect(4);
  InitializeRow(c, 11, expect.data(), 4);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(out[i], expect[i]);
    EXPECT_EQ(out[8 + i], expect[i]);
  }
  EXPECT_EQ(table->Stats().rows_in_memory(), 0u);
}

TEST(SparseTableTest, PushAppliesSgdToInitialRow) {
  TableConfig c = Config(2);
  auto table = Make(c);
  std::vector<uint64_t> keys = {5, 6};
  std::vector<float> grads = {1, 2, 3, 4};
  ASSERT_TRUE(table->Push(keys, grads.data(), nullptr, 1).ok());
  ASSERT_TRUE(table->Push(keys, grads.data(), nullptr, 2).ok());
  std::vector<float> out(4), init(2);
  ASSERT_TRUE(table->Pull(keys, out.data()).ok());
  InitializeRow(c, 6, init.data(), 2);
  EXPECT_NEAR(out[2], init[0] - 2 * 0.1f * 3, 1e-6);
  EXPECT_NEAR(out[3], init[1] - 2 * 0.1f * 4, 1e-6);
  auto snap = table->Peek(6);
  ASSERT_TRUE(snap.ok());
  EXPECT_EQ(snap->meta.updates, 2u);
  EXPECT_EQ(snap->meta.count, 2u);
  EXPECT_EQ(snap->meta.last_step, 2u);
}

// Threads serving the same stripes at once (as two server threads do when
// one runs ahead into the next request) put off the stripes the other holds
// and come back to them: every push still applies exactly once.
TEST(SparseTableTest, ThreadsOnTheSameStripesApplyEveryPushOnce) {
  TableConfig c = Config(4);
  c.mutable_init()->set_kind(InitializerConfig::ZEROS);
  c.mutable_optimizer()->set_learning_rate(1.0f);  // steps of 0.25: every sum exact
  auto table = Make(c);
  constexpr int kThreads = 4, kRounds = 30, kKeys = 20000;
  std::vector<uint64_t> keys(kKeys);
  for (int i = 0; i < kKeys; ++i) keys[i] = 7919ull * i + 3;
  const std::vector<float> grads(kKeys * 4, 0.25f);
  std::vector<std::thread> threads;
  std::vector<int> bad_pulls(kThreads, 0);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      SparseTable::KeyGroups groups;
      groups.Assign(keys);
      std::vector<float> out(kKeys * 4);
      for (int round = 0; round < kRounds; ++round) {
        EXPECT_TRUE(table->Push(groups, grads.data(), nullptr, round + 1).ok());
        EXPECT_TRUE(table->Pull(groups, out.data()).ok());
        // Rows change between pushes, never within one: each is a whole
        // number of steps, all four values alike.
        for (int i = 0; i < kKeys; ++i) {
          const float* row = &out[i * 4];
          const bool whole_steps = row[0] < 0 && row[0] == std::round(row[0] * 4) / 4;
          if (!whole_steps || row[1] != row[0] || row[2] != row[0] || row[3] != row[0])
            ++bad_pulls[t];
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(bad_pulls[t], 0) << "thread " << t;
  std::vector<float> out(kKeys * 4);
  ASSERT_TRUE(table->Pull(keys, out.data()).ok());
  for (int i = 0; i < kKeys * 4; ++i)
    ASSERT_EQ(out[i], -0.25f * kThreads * kRounds) << "value " << i;
  EXPECT_EQ(table->Stats().pushed_keys(), uint64_t{kThreads} * kRounds * kKeys);
}

// A store that has no rows. Armed, its next read waits for `release` (after
// notifying `entered`), so the reader holds its stripe's lock meanwhile; or
// its next read fails.
class GateStore : public KvStore {
 public:
  absl::Status Write(const std::vector<Op>&) override { return absl::OkStatus(); }
  absl::Status MultiGet(const std::vector<std::string_view>& keys, std::vector<std::string>* values,
                        std::vector<bool>* found) override {
    if (fail_next.exchange(false)) return absl::UnavailableError("gate store: read failed");
    if (hold_next.exchange(false)) {
      entered.Notify();
      release.WaitForNotification();
    }
    found->assign(keys.size(), false);
    if (values->size() < keys.size()) values->resize(keys.size());
    return absl::OkStatus();
  }
  absl::Status Checkpoint(const std::string&) override {
    return absl::UnimplementedError("gate store");
  }

  std::atomic<bool> hold_next{false}, fail_next{false};
  absl::Notification entered, release;
};

uint64_t KeyInStripe(int stripe) {
  uint64_t key = 1;
  while (SparseTable::StripeOf(key) != stripe) ++key;
  return key;
}

// A push whose first stripe another thread holds serves its other stripes
// meanwhile, and the held one once it is free.
TEST(SparseTableTest, APushServesItsFreeStripesWhileAnotherThreadHoldsOne) {
  GateStore store;
  SparseTable::Options options;
  options.store = &store;
  auto table = Make(Config(4), options);
  table->AddLoadedRows(1);  // misses read the store, under their stripe's lock
  const uint64_t held = KeyInStripe(0), free = KeyInStripe(SparseTable::kNumStripes - 1);
  store.hold_next = true;
  std::thread puller([&] {
    std::vector<float> out(4);
    EXPECT_TRUE(table->Pull(std::vector<uint64_t>{held}, out.data()).ok());
  });
  store.entered.WaitForNotification();  // the puller holds stripe 0
  std::thread pusher([&] {
    const std::vector<float> grads(8, 1.0f);
    EXPECT_TRUE(table->Push(std::vector<uint64_t>{held, free}, grads.data(), nullptr, 1).ok());
  });
  bool served = false;  // stripe 15's key, while stripe 0 is still held
  for (int wait = 0; wait < 1000 && !served; ++wait) {
    auto snap = table->Peek(free);
    served = snap.ok() && snap->meta.updates == 1;
    if (!served) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_TRUE(served) << "the push waited on stripe 0 before serving stripe 15";
  store.release.Notify();
  puller.join();
  pusher.join();
  auto snap = table->Peek(held);
  ASSERT_TRUE(snap.ok()) << snap.status();
  EXPECT_EQ(snap->meta.updates, 1u);
}

// A stripe whose serving failed is unlocked: the next request on it runs.
TEST(SparseTableTest, AFailedReadFailsTheRequestAndFreesItsStripe) {
  GateStore store;
  SparseTable::Options options;
  options.store = &store;
  auto table = Make(Config(4), options);
  table->AddLoadedRows(1);
  const std::vector<uint64_t> keys = {KeyInStripe(3), KeyInStripe(9)};
  const std::vector<float> grads(8, 1.0f);
  store.fail_next = true;
  absl::Status failed = table->Push(keys, grads.data(), nullptr, 1);
  EXPECT_EQ(failed.code(), absl::StatusCode::kUnavailable) << failed;
  ASSERT_TRUE(table->Push(keys, grads.data(), nullptr, 2).ok());
  for (uint64_t key : keys) {
    auto snap = table->Peek(key);
    ASSERT_TRUE(snap.ok()) << snap.status();
    EXPECT_EQ(snap->meta.last_step, 2u);
  }
}

// The server's threads group a request's blocks between them; the groups
// must serve every key as if the keys were served one by one, whichever
// thread grouped which block, in groups that held a bigger request before.
TEST(SparseTableTest, KeysGroupedBlockByBlockByTwoThreadsServeLikeOnesGroups) {
  TableConfig c = Config(8, SparseOptimizerConfig::ADAGRAD);
  auto table = Make(c);
  auto twin = Make(c);
  std::mt19937_64 rng(3);
  std::vector<uint64_t> keys(9 * SparseTable::kBlockKeys + 123);  // a short last block
  for (auto& k : keys) k = rng();
  std::vector<float> grads(keys.size() * 8);
  for (size_t i = 0; i < grads.size(); ++i) grads[i] = 0.001f * static_cast<float>(i % 101);
  const std::vector<uint64_t> stored(keys.begin(), keys.begin() + keys.size() / 2);
  ASSERT_TRUE(table->Push(stored, grads.data(), nullptr, 1).ok());
  ASSERT_TRUE(twin->Push(stored, grads.data(), nullptr, 1).ok());
  for (size_t i = 0; i < keys.size(); i += 7) keys[i] = keys[(i * 31) % keys.size()];  // repeats
  SparseTable::KeyGroups groups;
  std::vector<uint64_t> bigger(keys.size() * 2, 5);
  groups.Assign(bigger);
  groups.Prepare(keys);
  ASSERT_EQ(groups.num_blocks(), 10u);
  // Even blocks here, odd ones (backwards) on another thread.
  std::thread other([&] {
    for (size_t b = groups.num_blocks() - 1; b < groups.num_blocks(); b -= 2) groups.GroupBlock(b);
  });
  for (size_t b = 0; b < groups.num_blocks(); b += 2) groups.GroupBlock(b);
  other.join();
  std::vector<float> got(keys.size() * 8, -1.0f);
  ASSERT_TRUE(table->Pull(groups, got.data()).ok());
  for (size_t i = 0; i < keys.size(); ++i) {
    std::vector<float> row(8);
    ASSERT_TRUE(table->Pull(std::span<const uint64_t>(&keys[i], 1), row.data()).ok());
    ASSERT_EQ(std::vector<float>(got.begin() + i * 8, got.begin() + (i + 1) * 8), row)
        << "key " << i;
  }
  // A push through them applies each copy of a key once, as pushing the
  // keys one by one does.
  ASSERT_TRUE(table->Push(groups, grads.data(), nullptr, 2).ok());
  for (size_t i = 0; i < keys.size(); ++i) {
    ASSERT_TRUE(twin->Push(std::span<const uint64_t>(&keys[i], 1), &grads[i * 8], nullptr, 2).ok());
  }
  std::vector<float> a(keys.size() * 8), b(keys.size() * 8);
  ASSERT_TRUE(table->Pull(keys, a.data()).ok());
  ASSERT_TRUE(twin->Pull(keys, b.data()).ok());
  EXPECT_EQ(a, b);
}

TEST(SparseTableTest, PullIntoALineAlignedBufferGivesTheSameRows) {
  // Rows of dim 16 and 32 into a 64-byte-aligned buffer are whole lines, which
  // the table writes with non-temporal stores; into a buffer 16 bytes off,
  // with ordinary ones. Both give the same rows, for rows in memory and new
  // keys alike, with a repeated key, over several blocks.
  for (int dim : {16, 32}) {
    TableConfig c = Config(dim, SparseOptimizerConfig::ADAGRAD);
    auto table = Make(c);
    std::mt19937_64 rng(dim);
    std::vector<uint64_t> stored(20000), keys(30000);
    for (auto& k : stored) k = rng();
    std::vector<float> grads(stored.size() * dim);
    for (size_t i = 0; i < grads.size(); ++i) grads[i] = 0.001f * static_cast<float>(i % 997);
    ASSERT_TRUE(table->Push(stored, grads.data(), nullptr, 1).ok());
    for (size_t i = 0; i < keys.size(); ++i)
      keys[i] = i % 3 == 2 ? rng() : stored[rng() % stored.size()];
    keys[1] = keys[0];
    const size_t floats = keys.size() * dim;
    nn::AlignedVector memory(floats + 4);  // 64-byte aligned
    float* aligned = memory.data();
    float* off = aligned + 4;  // 16 bytes past a line
    std::vector<float> expect(floats);
    ASSERT_TRUE(table->Pull(keys, off).ok());
    std::copy(off, off + floats, expect.begin());
    std::fill(aligned, aligned + floats + 4, -1.0f);
    ASSERT_TRUE(table->Pull(keys, aligned).ok());
    EXPECT_EQ(std::vector<float>(aligned, aligned + floats), expect) << "dim " << dim;
    std::vector<float> first(dim);
    InitializeRow(c, keys[2], first.data(), dim);  // a new key
    EXPECT_EQ(std::vector<float>(aligned + 2 * dim, aligned + 3 * dim), first);
  }
}

TEST(SparseTableTest, RepeatedKeysInOnePushEachApply) {
  auto table = Make(Config(1));
  std::vector<uint64_t> keys = {9, 9, 9};
  std::vector<float> grads = {1, 1, 1};
  ASSERT_TRUE(table->Push(keys, grads.data(), nullptr, 1).ok());
  auto snap = table->Peek(9);
  ASSERT_TRUE(snap.ok());
  EXPECT_EQ(snap->meta.updates, 3u);
}

TEST(SparseTableTest, AdmissionWaitsForMinCount) {
  TableConfig c = Config(2);
  c.set_min_count(3);
  auto table = Make(c);
  std::vector<uint64_t> keys = {77};
  std::vector<float> grads = {1, 1}, out(2);
  ASSERT_TRUE(table->Pull(keys, out.data()).ok());
  EXPECT_EQ(out[0], 0.0f);  // not admitted: zeros
  ASSERT_TRUE(table->Push(keys, grads.data(), nullptr, 1).ok());
  ASSERT_TRUE(table->Push(keys, grads.data(), nullptr, 2).ok());
  EXPECT_EQ(table->Stats().rows_in_memory(), 0u);
  EXPECT_EQ(table->Stats().rows_pending_admission(), 1u);
  ASSERT_TRUE(table->Pull(keys, out.data()).ok());
  EXPECT_EQ(out[0], 0.0f);
  ASSERT_TRUE(table->Push(keys, grads.data(), nullptr, 3).ok());  // third sighting: admitted
  EXPECT_EQ(table->Stats().rows_in_memory(), 1u);
  auto snap = table->Peek(77);
  ASSERT_TRUE(snap.ok());
  EXPECT_EQ(snap->meta.count, 3u);
  EXPECT_EQ(snap->meta.updates, 1u);  // only the admitting push trained it
  std::vector<float> init(2);
  InitializeRow(c, 77, init.data(), 2);
  EXPECT_NEAR(snap->weights[0], init[0] - 0.1f, 1e-6);
}

TEST(SparseTableTest, AdmissionCountsSampleOccurrences) {
  TableConfig c = Config(1);
  c.set_min_count(5);
  auto table = Make(c);
  std::vector<uint64_t> keys = {1, 2};
  std::vector<float> grads = {1, 1};
  std::vector<uint32_t> counts = {5, 4};
  ASSERT_TRUE(table->Push(keys, grads.data(), counts.data(), 1).ok());
  EXPECT_TRUE(table->Peek(1).ok());
  EXPECT_FALSE(table->Peek(2).ok());
}

TEST(SparseTableTest, AdmitProbabilityAdmitsAboutThatFraction) {
  TableConfig c = Config(1);
  c.set_admit_probability(0.25f);
  auto table = Make(c);
  std::vector<uint64_t> keys(20000);
  for (size_t i = 0; i < keys.size(); ++i) keys[i] = i * 7919 + 1;
  std::vector<float> grads(keys.size(), 1.0f);
  ASSERT_TRUE(table->Push(keys, grads.data(), nullptr, 1).ok());
  double admitted = table->Stats().rows_in_memory() / 20000.0;
  EXPECT_NEAR(admitted, 0.25, 0.02);
}

TEST(SparseTableTest, TtlInStepsDropsStaleRows) {
  TableConfig c = Config(1);
  c.set_ttl_steps(10);
  auto table = Make(c);
  std::vector<uint64_t> old_keys = {1, 2}, fresh = {3};
  std::vector<float> g = {1, 1};
  ASSERT_TRUE(table->Push(old_keys, g.data(), nullptr, 5).ok());
  ASSERT_TRUE(table->Push(fresh, g.data(), nullptr, 14).ok());
  EXPECT_EQ(*table->EvictExpired(15), 0u);  // 10 steps old: still alive
  auto dropped = table->EvictExpired(16);   // 11 steps old: keys 1, 2 go
  ASSERT_TRUE(dropped.ok());
  EXPECT_EQ(*dropped, 2u);
  EXPECT_FALSE(table->Peek(1).ok());
  EXPECT_TRUE(table->Peek(3).ok());
  EXPECT_EQ(*table->EvictExpired(24), 0u);
  EXPECT_EQ(*table->EvictExpired(25), 1u);
}

TEST(SparseTableTest, TtlInSecondsDropsStaleRows) {
  TableConfig c = Config(1);
  c.set_ttl_seconds(60);
  uint32_t now = 1000;
  SparseTable::Options options;
  options.now_seconds = [&now] { return now; };
  auto table = Make(c, options);
  std::vector<uint64_t> keys = {1};
  std::vector<float> g = {1};
  ASSERT_TRUE(table->Push(keys, g.data(), nullptr, 1).ok());
  now = 1060;
  EXPECT_EQ(*table->EvictExpired(1), 0u);
  now = 1061;
  EXPECT_EQ(*table->EvictExpired(1), 1u);
}

std::string SpillDir(const std::string& name) {
  const std::string dir = testing::TempDir() + "/spill_" + name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

constexpr int kRows = 20000;
constexpr int kDim = 8;
// Budget bytes per Adagrad row of dim 8.
constexpr int64_t kRowCharge =
    sizeof(RowMeta) + 4 * 2 * kDim + SparseTable::kBookkeepingBytesPerRow;
// Tables under a budget of a third of their rows: the logs' index (about
// 20 bytes a row on disk) leaves memory for a sixth of the rows.

// Pushes 60 rounds of 1,000 random keys of [0, kRows) into every table, and
// pulls a batch between pushes (reading spilled rows where they are).
void PushRounds(const std::vector<SparseTable*>& tables, uint64_t seed, int first_step,
                MemoryBudget* budget) {
  std::mt19937_64 rng(seed);
  std::vector<uint64_t> keys(1000);
  std::vector<float> grads(1000 * kDim);
  for (int round = 0; round < 60; ++round) {
    for (auto& k : keys) k = rng() % kRows;
    for (auto& g : grads) g = std::uniform_real_distribution<float>(-1, 1)(rng);
    std::vector<float> first;
    for (SparseTable* t : tables) {
      std::vector<float> out(keys.size() * kDim);
      ASSERT_TRUE(t->Pull(keys, out.data()).ok());
      if (first.empty()) first = out;
      ASSERT_EQ(out, first) << "round " << round;
      ASSERT_TRUE(t->Push(keys, grads.data(), nullptr, first_step + round).ok());
    }
    if (budget != nullptr) {
      ASSERT_LE(budget->used(), budget->limit()) << "round " << round;
    }
  }
}

// Every row of `a`, wherever it lives, equals `b`'s exactly.
void ExpectSameRows(SparseTable& a, SparseTable& b) {
  std::vector<uint64_t> all(kRows);
  for (int i = 0; i < kRows; ++i) all[i] = i;
  std::vector<float> x(kRows * kDim), y(kRows * kDim);
  ASSERT_TRUE(a.Pull(all, x.data()).ok());
  ASSERT_TRUE(b.Pull(all, y.data()).ok());
  EXPECT_EQ(x, y);
  for (int k = 0; k < kRows; k += 97) {
    auto p = a.Peek(k), q = b.Peek(k);
    ASSERT_EQ(p.ok(), q.ok()) << k;
    if (p.ok()) {
      EXPECT_EQ(p->state, q->state) << k;
      EXPECT_EQ(p->meta.updates, q->meta.updates) << k;
      EXPECT_EQ(p->meta.count, q->meta.count) << k;
    }
  }
}

// Options for a table over `budget`'s limit, spilling into a fresh
// directory `dir`.
SparseTable::Options Spilling(MemoryBudget* budget, const std::string& dir) {
  SparseTable::Options options;
  options.budget = budget;
  options.spill_dir = SpillDir(dir);
  return options;
}

// The same, on a clock that reads *now.
SparseTable::Options SpillingOnClock(MemoryBudget* budget, const std::string& dir,
                                     const uint32_t* now) {
  SparseTable::Options options = Spilling(budget, dir);
  options.now_seconds = [now] { return *now; };
  return options;
}

// Every key the tests' tables are pushed.
std::vector<uint64_t> AllKeys() {
  std::vector<uint64_t> all(kRows);
  for (int i = 0; i < kRows; ++i) all[i] = i;
  return all;
}

TEST(SparseTableTest, MemoryLimitSpillsAndRoundTripsEveryRow) {
  // 3x over the limit, of which the spill logs' index takes a part: most
  // rows live in the logs.
  TableConfig c = Config(kDim, SparseOptimizerConfig::ADAGRAD);
  MemoryBudget budget(kRowCharge * kRows / 3);
  auto table = Make(c, Spilling(&budget, "roundtrip"));
  auto reference = Make(c);  // unlimited twin
  PushRounds({table.get(), reference.get()}, 1, 0, &budget);
  TableStats st = table->Stats();
  // 10x the limit in bytes; the stripes' indexes take their part of it too.
  EXPECT_GT(st.rows_on_disk(), st.rows_in_memory() * 3);
  EXPECT_GE(st.bytes_on_disk(), st.rows_on_disk() * (sizeof(RowMeta) + 4 * 2 * kDim));
  EXPECT_LE(st.rows_in_memory() * kRowCharge, static_cast<uint64_t>(budget.limit()));
  EXPECT_EQ(st.rows_in_memory() + st.rows_on_disk(), reference->Stats().rows_in_memory());
  ExpectSameRows(*table, *reference);
  EXPECT_LE(budget.used(), budget.limit());
}

TEST(SparseTableTest, StatsCountEachKeyWhereItWasFound) {
  // A pull of distinct keys over several blocks, in two stripe ranges (as
  // the server divides a request between its threads; here one after the
  // other): each key is counted once, as a memory hit, a disk hit (a
  // spilled row read back) or a miss. (With a TTL, an expired row is
  // counted as a hit and then as a miss.) Rows read back push others out,
  // so a row in memory before may be found on disk; one on disk stays
  // there until its own lookup.
  TableConfig c = Config(kDim, SparseOptimizerConfig::ADAGRAD);
  MemoryBudget budget(kRowCharge * kRows / 3);
  auto table = Make(c, Spilling(&budget, "stats"));
  std::vector<uint64_t> pushed(kRows / 2);
  for (int i = 0; i < kRows / 2; ++i) pushed[i] = 2 * i;  // the even keys
  std::vector<float> grads(pushed.size() * kDim, 0.5f);
  ASSERT_TRUE(table->Push(pushed, grads.data(), nullptr, 1).ok());
  TableStats before = table->Stats();
  EXPECT_EQ(before.misses(), pushed.size());  // each push made its row
  ASSERT_GT(before.rows_on_disk(), 0u);
  ASSERT_GT(before.rows_in_memory(), 0u);
  ASSERT_EQ(before.rows_on_disk() + before.rows_in_memory(), pushed.size());

  const std::vector<uint64_t> all = AllKeys();
  SparseTable::KeyGroups groups;
  groups.Assign(all);
  std::vector<float> out(all.size() * kDim);
  ASSERT_TRUE(table->Pull(groups, out.data(), {0, 5}).ok());
  ASSERT_TRUE(table->Pull(groups, out.data(), {5, SparseTable::kNumStripes}).ok());
  TableStats after = table->Stats();
  EXPECT_EQ(after.memory_hits() - before.memory_hits() + after.disk_hits() - before.disk_hits(),
            pushed.size());
  EXPECT_GE(after.disk_hits() - before.disk_hits(), before.rows_on_disk());
  EXPECT_EQ(after.misses() - before.misses(), all.size() - pushed.size());
}

TEST(SparseTableTest, LimitWithoutSpillDirIsRejected) {
  MemoryBudget budget(1 << 20);
  SparseTable::Options options;
  options.budget = &budget;
  auto t = SparseTable::Create(Config(4), options);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("directory to spill"), std::string::npos) << t.status();
}

TEST(SparseTableTest, FlushWritesSpilledRowsAndALoadReadsThemBackThroughRocksDb) {
  // A 256 KB memtable: loaded rows come back from SST files, not only the
  // memtable.
  TableConfig c = Config(kDim, SparseOptimizerConfig::ADAGRAD);
  const std::string dir = SpillDir("flush");
  auto store = OpenRocksDbStore(dir + "/rocksdb", 256 << 10);
  ASSERT_TRUE(store.ok()) << store.status();
  MemoryBudget budget(kRowCharge * kRows / 3);
  SparseTable::Options options;
  options.store = store->get();
  options.budget = &budget;
  options.spill_dir = dir;
  auto table = Make(c, options);
  auto reference = Make(c);
  PushRounds({table.get(), reference.get()}, 2, 0, &budget);
  const uint64_t rows = reference->Stats().rows_in_memory();
  auto written = table->Flush();
  ASSERT_TRUE(written.ok()) << written.status();
  EXPECT_EQ(*written, rows);       // memory and spill files alike
  EXPECT_EQ(*table->Flush(), 0u);  // nothing changed since
  // A few more pushes: the next flush writes only the rows they touched.
  PushRounds({table.get(), reference.get()}, 3, 60, &budget);
  auto again = table->Flush();
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_GT(*again, 0u);
  EXPECT_LT(*again, rows);
  table.reset();

  // A new table over the flushed store, as a checkpoint load leaves it.
  MemoryBudget budget2(kRowCharge * kRows / 3);
  options.budget = &budget2;
  options.spill_dir = SpillDir("flush_reload");
  auto loaded = Make(c, options);
  const uint64_t stored = reference->Stats().rows_in_memory();
  loaded->AddLoadedRows(stored);
  ExpectSameRows(*loaded, *reference);
  // That pull read each stored row from the store once; the other keys missed.
  TableStats st = loaded->Stats();
  EXPECT_EQ(st.disk_hits(), stored);
  EXPECT_EQ(st.memory_hits(), 0u);
  EXPECT_EQ(st.misses(), kRows - stored);
  // Training goes on identically: rows move between memory, the spill files
  // and the store.
  PushRounds({loaded.get(), reference.get()}, 4, 120, &budget2);
  ExpectSameRows(*loaded, *reference);
}

// A table with a TTL of 10 steps under `budget`, every key of [0, kRows)
// pushed at step 1, then every `keep_every`-th key again at step 20: at
// step 25 the others are 24 steps old and expire.
std::unique_ptr<SparseTable> TtlTableKeepingEvery(int keep_every, MemoryBudget* budget,
                                                  const std::string& dir) {
  TableConfig c = Config(kDim, SparseOptimizerConfig::ADAGRAD);
  c.set_ttl_steps(10);
  SparseTable::Options options;
  options.budget = budget;
  options.spill_dir = SpillDir(dir);
  auto table = Make(c, options);
  std::vector<uint64_t> keys(kRows);
  for (int i = 0; i < kRows; ++i) keys[i] = i;
  std::vector<float> grads(kRows * kDim, 0.5f);
  EXPECT_TRUE(table->Push(keys, grads.data(), nullptr, 1).ok());
  std::vector<uint64_t> kept;
  for (int i = 0; i < kRows; i += keep_every) kept.push_back(i);
  EXPECT_TRUE(table->Push(kept, grads.data(), nullptr, 20).ok());
  return table;
}

TEST(SparseTableTest, TtlEvictionReachesSpilledRows) {
  MemoryBudget budget(kRowCharge * kRows / 3);
  auto table = TtlTableKeepingEvery(2, &budget, "ttl");
  ASSERT_GT(table->Stats().rows_on_disk(), 0u);
  // Expired in memory and in the spill files alike.
  auto dropped = table->EvictExpired(25);
  ASSERT_TRUE(dropped.ok()) << dropped.status();
  EXPECT_EQ(*dropped, static_cast<uint64_t>(kRows / 2));
  TableStats st = table->Stats();
  EXPECT_EQ(st.rows_in_memory() + st.rows_on_disk(), static_cast<uint64_t>(kRows / 2));
  EXPECT_FALSE(table->Peek(1).ok());
  EXPECT_TRUE(table->Peek(2).ok());
}

TEST(SparseTableTest, EvictingMostRowsGivesTheIndexMemoryBack) {
  MemoryBudget budget(int64_t{1} << 30);  // never reached: nothing spills
  constexpr int kKeepEvery = 20;
  auto table = TtlTableKeepingEvery(kKeepEvery, &budget, "shrink");
  constexpr int64_t kKept = kRows / kKeepEvery;
  auto dropped = table->EvictExpired(25);
  ASSERT_TRUE(dropped.ok()) << dropped.status();
  ASSERT_EQ(*dropped, static_cast<uint64_t>(kRows - kKept));
  // The kept rows, and indexes that shrank: at most 8 entries a row (an
  // index shrinks while under 1/8 full), 8/5 of a 64-byte line, within the
  // 128 bytes a row allowed below; plus each stripe's minimum of 4 lines,
  // 256 bytes. Indexes still sized for all 20,000 rows kept several times
  // the bound charged.
  const int64_t rows = kKept * kRowCharge;
  const int64_t index_bound = (8 * kKept + 16 * SparseTable::kNumStripes) * 16;
  EXPECT_LE(budget.used(), rows + index_bound);
  for (uint64_t k = 0; k < kRows; k += kKeepEvery) EXPECT_TRUE(table->Peek(k).ok()) << k;
}

TEST(SparseTableTest, AnExpiredSpilledRowIsDroppedByThePullOrPushThatFindsIt) {
  TableConfig c = Config(kDim, SparseOptimizerConfig::ADAGRAD);
  c.set_ttl_seconds(100);
  uint32_t now = 1000;
  MemoryBudget budget(kRowCharge * kRows / 3);
  auto table = Make(c, SpillingOnClock(&budget, "ttl_found", &now));
  const std::vector<uint64_t> all = AllKeys();
  std::vector<float> grads(kRows * kDim, 0.5f);
  ASSERT_TRUE(table->Push(all, grads.data(), nullptr, 1).ok());
  std::vector<uint64_t> spilled;  // two keys whose rows are in the spill files
  for (uint64_t k = 0; k < kRows && spilled.size() < 2; ++k) {
    if (table->Peek(k)->on_disk) spilled.push_back(k);
  }
  ASSERT_EQ(spilled.size(), 2u);
  now = 1200;
  const uint64_t evicted = table->Stats().rows_evicted_ttl();
  // A pull of the first, twice in one request: both copies read its initial value.
  std::vector<uint64_t> pull = {spilled[0], spilled[0]};
  std::vector<float> out(2 * kDim), init(kDim);
  ASSERT_TRUE(table->Pull(pull, out.data()).ok());
  InitializeRow(c, spilled[0], init.data(), kDim);
  EXPECT_EQ(std::vector<float>(out.begin(), out.begin() + kDim), init);
  EXPECT_EQ(std::vector<float>(out.begin() + kDim, out.end()), init);
  EXPECT_FALSE(table->Peek(spilled[0]).ok());
  // A push of the second, twice in one request: a new row takes both, as in
  // a table that never had the key.
  std::vector<uint64_t> push = {spilled[1], spilled[1]};
  std::vector<float> g(2 * kDim, -0.25f);
  ASSERT_TRUE(table->Push(push, g.data(), nullptr, 2).ok());
  auto fresh = Make(c);
  ASSERT_TRUE(fresh->Push(push, g.data(), nullptr, 2).ok());
  auto x = table->Peek(spilled[1]), y = fresh->Peek(spilled[1]);
  ASSERT_TRUE(x.ok() && y.ok());
  EXPECT_EQ(x->weights, y->weights);
  EXPECT_EQ(x->state, y->state);
  EXPECT_EQ(x->meta.updates, 2u);
  EXPECT_EQ(table->Stats().rows_evicted_ttl(), evicted + 2);
}

TEST(SparseTableTest, ASpillThatCannotBeWrittenFailsThePushAndLosesNoRow) {
  // A file size limit stands in for a full disk under the spill directory.
  // (The budget holds the logs' index of the rows that reach the disk.)
  TableConfig c = Config(kDim);
  MemoryBudget budget(2 << 20);
  SparseTable::Options options;
  options.budget = &budget;
  options.spill_dir = SpillDir("full");
  auto table = Make(c, options);
  auto reference = Make(c);
  std::vector<float> grads(1000 * kDim, 0.25f);
  std::vector<uint64_t> keys(1000);
  absl::Status status;
  int done = 0;  // pushes that succeeded; each has its own 1,000 keys
  {
    ScopedFileSizeLimit limit(64 << 10);
    ASSERT_TRUE(limit.ok());
    for (; done < 200; ++done) {
      for (int i = 0; i < 1000; ++i) keys[i] = done * 1000 + i;
      status = table->Push(keys, grads.data(), nullptr, 1);
      if (!status.ok()) break;
      ASSERT_TRUE(reference->Push(keys, grads.data(), nullptr, 1).ok());
    }
  }
  ASSERT_FALSE(status.ok()) << "the spill logs never reached the size limit";
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(status.message().find("table \"emb\": spilling cold rows"), std::string::npos)
      << status;
  EXPECT_NE(status.message().find("File too large"), std::string::npos) << status;
  ASSERT_GT(done, 0);
  // Every row of the pushes that succeeded is intact, in memory or on disk.
  std::vector<uint64_t> all(done * 1000);
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  std::vector<float> a(all.size() * kDim), b(all.size() * kDim);
  ASSERT_TRUE(table->Pull(all, a.data()).ok());
  ASSERT_TRUE(reference->Pull(all, b.data()).ok());
  EXPECT_EQ(a, b);
  // With room on disk again, the table goes on and gets back under its limit.
  for (int i = 0; i < 1000; ++i) keys[i] = 10000000 + i;
  ASSERT_TRUE(table->Push(keys, grads.data(), nullptr, 2).ok());
  EXPECT_LE(budget.used(), budget.limit());
  ASSERT_TRUE(table->Pull(all, a.data()).ok());
  EXPECT_EQ(a, b);
}

TEST(SparseTableTest, L2OnMissedStepsMatchesDenseUpdates) {
  // A row updated at steps 1 and 5 must equal one that took the L2-only
  // update at steps 2, 3 and 4 explicitly.
  TableConfig c = Config(2, SparseOptimizerConfig::ADAM);
  c.mutable_optimizer()->set_l2(0.5f);
  c.mutable_optimizer()->set_l2_on_missed_steps(true);
  auto lazy = Make(c);
  c.mutable_optimizer()->set_l2_on_missed_steps(false);
  auto dense = Make(c);
  std::vector<uint64_t> key = {3};
  std::vector<float> g = {0.3f, -0.2f}, zero = {0, 0};
  ASSERT_TRUE(lazy->Push(key, g.data(), nullptr, 1).ok());
  ASSERT_TRUE(lazy->Push(key, g.data(), nullptr, 5).ok());
  ASSERT_TRUE(dense->Push(key, g.data(), nullptr, 1).ok());
  for (int step = 2; step <= 4; ++step)
    ASSERT_TRUE(dense->Push(key, zero.data(), nullptr, step).ok());
  ASSERT_TRUE(dense->Push(key, g.data(), nullptr, 5).ok());
  auto a = lazy->Peek(3), b = dense->Peek(3);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->meta.updates, 5u);
  for (int d = 0; d < 2; ++d) {
    EXPECT_FLOAT_EQ(a->weights[d], b->weights[d]);
    EXPECT_FLOAT_EQ(a->state[d], b->state[d]);
  }
  // Without the option the gap is ignored: fewer updates, different row.
  c.mutable_optimizer()->set_l2_on_missed_steps(false);
  auto plain = Make(c);
  ASSERT_TRUE(plain->Push(key, g.data(), nullptr, 1).ok());
  ASSERT_TRUE(plain->Push(key, g.data(), nullptr, 5).ok());
  EXPECT_EQ(plain->Peek(3)->meta.updates, 2u);
}

TEST(SparseTableTest, PullWithCatchUpReadsTheRowADenseOptimizerHolds) {
  // Updated at step 1, pulled with catch_up_to 5: the row must read as one
  // that took the L2-only updates of steps 2, 3 and 4 explicitly, and a push
  // at step 5 must then leave both rows equal.
  TableConfig c = Config(2, SparseOptimizerConfig::ADAM);
  c.mutable_optimizer()->set_l2(0.5f);
  c.mutable_optimizer()->set_l2_on_missed_steps(true);
  auto lazy = Make(c);
  c.mutable_optimizer()->set_l2_on_missed_steps(false);
  auto dense = Make(c);
  std::vector<uint64_t> key = {3};
  std::vector<float> g = {0.3f, -0.2f}, zero = {0, 0}, a(2), b(2), before(2);
  ASSERT_TRUE(lazy->Push(key, g.data(), nullptr, 1).ok());
  ASSERT_TRUE(lazy->Pull(key, before.data()).ok());
  ASSERT_TRUE(lazy->Pull(key, a.data(), 5, 0.5f).ok());
  ASSERT_TRUE(dense->Push(key, g.data(), nullptr, 1).ok());
  for (int step = 2; step <= 4; ++step) {
    ASSERT_TRUE(dense->Push(key, zero.data(), nullptr, step, 0.5f).ok());
  }
  ASSERT_TRUE(dense->Pull(key, b.data()).ok());
  EXPECT_NE(a, before);
  for (int d = 0; d < 2; ++d) EXPECT_FLOAT_EQ(a[d], b[d]);
  EXPECT_EQ(lazy->Peek(3)->meta.updates, 4u);
  EXPECT_EQ(lazy->Peek(3)->meta.last_step, 4u);
  // A second pull up to the same step changes nothing.
  ASSERT_TRUE(lazy->Pull(key, a.data(), 5, 0.5f).ok());
  for (int d = 0; d < 2; ++d) EXPECT_FLOAT_EQ(a[d], b[d]);
  ASSERT_TRUE(lazy->Push(key, g.data(), nullptr, 5, 0.5f).ok());
  ASSERT_TRUE(dense->Push(key, g.data(), nullptr, 5, 0.5f).ok());
  auto x = lazy->Peek(3), y = dense->Peek(3);
  ASSERT_TRUE(x.ok() && y.ok());
  EXPECT_EQ(x->meta.updates, 5u);
  for (int d = 0; d < 2; ++d) {
    EXPECT_FLOAT_EQ(x->weights[d], y->weights[d]);
    EXPECT_FLOAT_EQ(x->state[d], y->state[d]);
  }
  // Without l2_on_missed_steps a pull never changes a row.
  ASSERT_TRUE(dense->Pull(key, a.data(), 20).ok());
  EXPECT_EQ(dense->Peek(3)->meta.updates, 5u);
}

TEST(SparseTableTest, ZeroDimIsRejected) {
  TableConfig c = Config(0);
  EXPECT_EQ(SparseTable::Create(c, {}).status().code(), absl::StatusCode::kInvalidArgument);
}

// Pushes `rounds` of `per_round` random keys of [first, first + rows) with
// gradients drawn from `seed`, and a pull of as many other keys between
// pushes, into `table` (step numbers from 1).
void TrainRange(SparseTable& table, uint64_t seed, uint64_t first, int rows, int rounds,
                int per_round) {
  std::mt19937_64 rng(seed);
  const int dim = table.dim();
  std::vector<uint64_t> keys(per_round);
  std::vector<float> grads(static_cast<size_t>(per_round) * dim), out(grads.size());
  for (int round = 0; round < rounds; ++round) {
    for (auto& k : keys) k = first + rng() % rows;
    ASSERT_TRUE(table.Pull(keys, out.data()).ok());
    for (auto& k : keys) k = first + rng() % rows;
    for (auto& g : grads) g = std::uniform_real_distribution<float>(-1, 1)(rng);
    absl::Status s = table.Push(keys, grads.data(), nullptr, round + 1);
    ASSERT_TRUE(s.ok()) << s;
  }
}

// Every row of [0, rows) of `a` equals `b`'s bit for bit: weights, optimizer
// state and meta.
void ExpectSameRowsExactly(SparseTable& a, SparseTable& b, uint64_t rows) {
  for (uint64_t k = 0; k < rows; ++k) {
    auto p = a.Peek(k), q = b.Peek(k);
    ASSERT_EQ(p.ok(), q.ok()) << "key " << k;
    if (!p.ok()) continue;
    ASSERT_EQ(p->weights, q->weights) << "key " << k;
    ASSERT_EQ(p->state, q->state) << "key " << k;
    ASSERT_EQ(p->meta.updates, q->meta.updates) << "key " << k;
    ASSERT_EQ(p->meta.count, q->meta.count) << "key " << k;
    ASSERT_EQ(p->meta.last_step, q->meta.last_step) << "key " << k;
  }
}

TEST(SparseTableTest, EveryOptimizerAndDimRoundTripsEveryRowThroughTheLogs) {
  constexpr int kTableRows = 3000;
  for (auto kind : {SparseOptimizerConfig::SGD, SparseOptimizerConfig::ADAGRAD,
                    SparseOptimizerConfig::ADAM, SparseOptimizerConfig::FTRL}) {
    for (int dim : {1, 10, 15, 16, 64}) {
      SCOPED_TRACE(
          absl::StrFormat("optimizer %s, dim %d", SparseOptimizerConfig::Kind_Name(kind), dim));
      TableConfig c = Config(dim, kind);
      auto reference = Make(c);
      const int64_t charge =
          static_cast<int64_t>(reference->row_bytes()) + SparseTable::kBookkeepingBytesPerRow;
      // A third of the rows, plus what the logs need whatever the rows:
      // their index (about 20 bytes a row on disk) and a page of write
      // buffer per stripe.
      MemoryBudget budget(charge * kTableRows / 3 + 24 * kTableRows +
                          4096 * SparseTable::kNumStripes);
      auto table = Make(c, Spilling(&budget, "matrix"));
      TrainRange(*table, dim, 0, kTableRows, 12, 600);
      TrainRange(*reference, dim, 0, kTableRows, 12, 600);
      const TableStats st = table->Stats();
      EXPECT_GT(st.rows_on_disk(), st.rows_in_memory()) << "the limit kept the table in memory";
      EXPECT_GT(st.disk_hits(), 0u);
      EXPECT_LE(budget.used(), budget.limit());
      ExpectSameRowsExactly(*table, *reference, kTableRows);
    }
  }
}

TEST(SparseTableTest, CompactionRacingPullsAndPushesLosesNothing) {
  // Three threads train their own key ranges (so each key's updates come in
  // one order) on a table whose logs have small segments, compacted while
  // the others' requests run; an unlimited twin takes the same requests one
  // thread after another.
  constexpr int kThreads = 3, kRange = 4000;
  TableConfig c = Config(kDim, SparseOptimizerConfig::ADAGRAD);
  MemoryBudget budget(kRowCharge * kThreads * kRange / 3);
  SparseTable::Options options = Spilling(&budget, "compaction_race");
  options.spill_segment_bytes = 16 << 10;
  options.compact_step_bytes = 4 << 10;
  auto table = Make(c, options);
  auto reference = Make(c);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back(
        [&, t] { TrainRange(*table, 100 + t, uint64_t{t} * kRange, kRange, 80, 400); });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t)
    TrainRange(*reference, 100 + t, uint64_t{t} * kRange, kRange, 80, 400);
  const TableStats st = table->Stats();
  EXPECT_GT(st.compacted_segments(), 10u);
  EXPECT_GT(st.compacted_live_rows(), 0u);
  EXPECT_EQ(st.compaction_failures(), 0u);
  // Compaction keeps the logs within their stale bound (plus the segments
  // being compacted and the open ones).
  EXPECT_LT(st.disk_stale_bytes(),
            0.25 * st.bytes_on_disk() + 3 * SparseTable::kNumStripes * (16 << 10));
  ExpectSameRowsExactly(*table, *reference, kThreads * kRange);
}

TEST(SparseTableTest, AFlushAfterFewChangesWritesOnlyTheChangedRowsWhereverTheyAre) {
  // An incremental checkpoint of a table mostly on disk reads the records
  // appended since the last flush, not the whole log, and writes exactly
  // the rows pushed since.
  TableConfig c = Config(kDim, SparseOptimizerConfig::ADAGRAD);
  const std::string dir = SpillDir("incremental");
  auto store = OpenRocksDbStore(dir + "/rocksdb");
  ASSERT_TRUE(store.ok()) << store.status();
  MemoryBudget budget(kRowCharge * kRows / 3);
  SparseTable::Options options = Spilling(&budget, "incremental_spill");
  options.store = store->get();
  auto table = Make(c, options);
  const std::vector<uint64_t> all = AllKeys();
  std::vector<float> grads(all.size() * kDim, 0.5f), out(all.size() * kDim);
  ASSERT_TRUE(table->Push(all, grads.data(), nullptr, 1).ok());
  ASSERT_EQ(*table->Flush(), static_cast<uint64_t>(kRows));
  // Pulls move rows between memory and the logs but change none.
  ASSERT_TRUE(table->Pull(all, out.data()).ok());
  EXPECT_EQ(*table->Flush(), 0u);
  std::vector<uint64_t> changed;
  for (int k = 0; k < kRows; k += 50) changed.push_back(k);  // 2%
  ASSERT_TRUE(table->Push(changed, grads.data(), nullptr, 2).ok());
  ASSERT_TRUE(table->Pull(all, out.data()).ok());  // pushes the changed ones out to the logs
  EXPECT_EQ(*table->Flush(), changed.size());
  EXPECT_EQ(*table->Flush(), 0u);
}

}  // namespace
}  // namespace ctrps
