// The sparse table alone (no network): pull and push of 100k unique keys
// against tables of 1M and 10M rows, dim 16, Adagrad; and (OverLimit) a
// 10M-row table with a memory budget of a tenth of it, spilling to logs in
// $TMPDIR (default /tmp), its keys drawn from 6.4M so most live on disk.
// PlainMap: the same pulls and pushes against the store of a small PS
// built the plain way, a std::unordered_map from key to a vector of weights
// and optimizer state: the yardstick the in-memory aims are stated against.
// GroupKeys: grouping a request's 100k keys by stripe, block by block
// (KeyGroups::Assign), by one thread; the server's threads share the blocks
// of a split request between them.
// MutexLock: the cost of a lock with absl's lock-order checks on and off.
//   table_bench [--benchmark_filter=...]
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <span>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "benchmark/benchmark.h"
#include "common/benchmark_main.h"
#include "common/hash.h"
#include "ps/sparse_optimizer.h"
#include "ps/sparse_table.h"
#include "worker/nn/tensor.h"

namespace ctrps {
namespace {

constexpr int kDim = 16;
constexpr int kKeys = 100000;

TableConfig BenchConfig() {
  TableConfig c;
  c.set_name("emb");
  c.set_dim(kDim);
  c.mutable_optimizer()->set_kind(SparseOptimizerConfig::ADAGRAD);
  return c;
}

// `count` requests of kKeys keys drawn from a table's `rows` keys.
std::vector<std::vector<uint64_t>> KeySets(int64_t rows, int count) {
  std::mt19937_64 rng(1);
  std::vector<std::vector<uint64_t>> sets(count, std::vector<uint64_t>(kKeys));
  for (auto& s : sets) {
    for (auto& k : s) k = Mix64(rng() % rows + 1);
  }
  return sets;
}

struct Fixture {
  std::unique_ptr<MemoryBudget> budget;
  std::string spill_dir;
  std::unique_ptr<SparseTable> table;
  std::vector<std::vector<uint64_t>> sets;
  // 64-byte aligned, as PsClient's shared buffers and the server's reply
  // frames are, so that pulls of dim 16 write whole lines (the table's
  // non-temporal stores).
  nn::AlignedVector buf;

  ~Fixture() {
    table.reset();  // removes its spill files
    if (!spill_dir.empty()) std::filesystem::remove_all(spill_dir);
  }

  Fixture(int64_t rows, bool over_limit) {
    SparseTable::Options options;
    if (over_limit) {
      const char* tmp = std::getenv("TMPDIR");
      spill_dir = std::string(tmp != nullptr ? tmp : "/tmp") + "/table_bench_spill_" +
                  std::to_string(getpid());
      std::filesystem::create_directories(spill_dir);
      budget = std::make_unique<MemoryBudget>(rows * (sizeof(RowMeta) + 8 * kDim) / 10);
      options.budget = budget.get();
      options.spill_dir = spill_dir;
    }
    table = std::move(*SparseTable::Create(BenchConfig(), options));
    buf.assign(static_cast<size_t>(kKeys) * kDim, 0.001f);
    std::vector<uint64_t> keys(kKeys);
    for (int64_t r = 0; r < rows; r += kKeys) {
      for (int i = 0; i < kKeys; ++i) keys[i] = Mix64(r + i + 1);
      (void)table->Push(keys, buf.data(), nullptr, 0);
    }
    sets = KeySets(rows, over_limit ? 64 : 8);
  }

  absl::Status Pull(std::span<const uint64_t> keys, float* out) { return table->Pull(keys, out); }
  absl::Status Push(std::span<const uint64_t> keys, const float* grads) {
    return table->Push(keys, grads, nullptr, 1);
  }
};

// A plain hash-map store: a node and a vector per key, with the table's
// initial rows and optimizer.
struct PlainMap {
  const TableConfig config = BenchConfig();
  const std::unique_ptr<SparseOptimizer> optimizer =
      std::move(*SparseOptimizer::Create(config.optimizer(), kDim));
  std::unordered_map<uint64_t, std::vector<float>> rows;
  std::vector<std::vector<uint64_t>> sets;
  std::vector<float> buf;

  explicit PlainMap(int64_t n) {
    rows.reserve(n);
    for (int64_t r = 0; r < n; ++r) Row(Mix64(r + 1));
    buf.assign(static_cast<size_t>(kKeys) * kDim, 0.001f);
    sets = KeySets(n, 8);
  }
  std::vector<float>& Row(uint64_t key) {
    auto [it, added] = rows.try_emplace(key);
    if (added) {
      it->second.resize(kDim + optimizer->state_dim());
      InitializeRow(config, key, it->second.data(), kDim);
      optimizer->InitState(it->second.data() + kDim);
    }
    return it->second;
  }
  absl::Status Pull(std::span<const uint64_t> keys, float* out) {
    for (size_t i = 0; i < keys.size(); ++i) {
      auto it = rows.find(keys[i]);
      if (it != rows.end()) {
        std::memcpy(out + i * kDim, it->second.data(), sizeof(float) * kDim);
      } else {
        InitializeRow(config, keys[i], out + i * kDim, kDim);
      }
    }
    return absl::OkStatus();
  }
  absl::Status Push(std::span<const uint64_t> keys, const float* grads) {
    for (size_t i = 0; i < keys.size(); ++i) {
      float* w = Row(keys[i]).data();
      optimizer->Update(w, w + kDim, grads + i * kDim, 1, optimizer->learning_rate());
    }
    return absl::OkStatus();
  }
};

template <typename Store, typename... Args>
Store& Get(Args... args) {
  static std::map<std::tuple<Args...>, std::unique_ptr<Store>> cache;
  auto& s = cache[{args...}];
  if (!s) s = std::make_unique<Store>(args...);
  return *s;
}

template <typename Store>
void Pulls(benchmark::State& state, Store& s) {
  size_t i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(s.Pull(s.sets[i++ % s.sets.size()], s.buf.data()));
  state.SetItemsProcessed(state.iterations() * kKeys);
}

template <typename Store>
void Pushes(benchmark::State& state, Store& s) {
  size_t i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(s.Push(s.sets[i++ % s.sets.size()], s.buf.data()));
  state.SetItemsProcessed(state.iterations() * kKeys);
}

void BM_Pull(benchmark::State& state) { Pulls(state, Get<Fixture>(state.range(0), false)); }
BENCHMARK(BM_Pull)->Arg(1000000)->Arg(10000000)->Unit(benchmark::kMillisecond);

void BM_PushAdagrad(benchmark::State& state) { Pushes(state, Get<Fixture>(state.range(0), false)); }
BENCHMARK(BM_PushAdagrad)->Arg(1000000)->Arg(10000000)->Unit(benchmark::kMillisecond);

void BM_PullPlainMap(benchmark::State& state) { Pulls(state, Get<PlainMap>(state.range(0))); }
BENCHMARK(BM_PullPlainMap)->Arg(1000000)->Arg(10000000)->Unit(benchmark::kMillisecond);

void BM_PushAdagradPlainMap(benchmark::State& state) {
  Pushes(state, Get<PlainMap>(state.range(0)));
}
BENCHMARK(BM_PushAdagradPlainMap)->Arg(1000000)->Arg(10000000)->Unit(benchmark::kMillisecond);

void BM_PullOverLimit(benchmark::State& state) { Pulls(state, Get<Fixture>(state.range(0), true)); }
BENCHMARK(BM_PullOverLimit)->Arg(10000000)->Unit(benchmark::kMillisecond)->MinTime(3);

void BM_PushAdagradOverLimit(benchmark::State& state) {
  Pushes(state, Get<Fixture>(state.range(0), true));
}
BENCHMARK(BM_PushAdagradOverLimit)->Arg(10000000)->Unit(benchmark::kMillisecond)->MinTime(3);

void BM_GroupKeys(benchmark::State& state) {
  std::mt19937_64 rng(7);
  std::vector<uint64_t> keys(kKeys);
  for (auto& k : keys) k = Mix64(rng() % 10000000 + 1);
  SparseTable::KeyGroups groups;
  for (auto _ : state) {
    groups.Assign(keys);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * kKeys);
}
BENCHMARK(BM_GroupKeys);

// Lock and unlock, in turn, 16 absl::Mutexes (a request locks each stripe's
// once a block), with absl's lock-order checks on (1) or off (0): what
// SkipLockOrderChecksInRelease saves a lock.
void BM_MutexLock(benchmark::State& state) {
  absl::SetMutexDeadlockDetectionMode(state.range(0) != 0 ? absl::OnDeadlockCycle::kAbort
                                                          : absl::OnDeadlockCycle::kIgnore);
  absl::Mutex mu[16];
  size_t i = 0;
  for (auto _ : state) absl::MutexLock lock(&mu[i++ % 16]);
  state.SetItemsProcessed(state.iterations());
  SkipLockOrderChecksInRelease();
}
BENCHMARK(BM_MutexLock)->Arg(0)->Arg(1);

}  // namespace
}  // namespace ctrps

CTRPS_BENCHMARK_MAIN();
