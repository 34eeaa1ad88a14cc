// The sparse table alone (no network): pull and push of 100k unique keys
// against tables of 1M and 10M rows, dim 16, Adagrad; and (OverLimit) a
// 10M-row table with a memory budget of a tenth of it, spilling to files in
// $TMPDIR (default /tmp), its keys drawn from 6.4M so most live on disk.
// PlainMap: the same pulls and pushes against the store of a small PS
// built the plain way, a std::unordered_map from key to a vector of weights
// and Adagrad state, as the yardstick issue 2's aims are stated against.
//   table_bench [--benchmark_filter=...]
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "benchmark/benchmark.h"
#include "common/hash.h"
#include "ps/sparse_optimizer.h"
#include "ps/sparse_table.h"

namespace ctrps {
namespace {

constexpr int kDim = 16;
constexpr int kKeys = 100000;

struct Fixture {
  std::unique_ptr<MemoryBudget> budget;
  std::string spill_dir;
  std::unique_ptr<SparseTable> table;
  std::vector<std::vector<uint64_t>> sets;
  std::vector<float> buf;

  ~Fixture() {
    table.reset();  // removes its spill files
    if (!spill_dir.empty()) std::filesystem::remove_all(spill_dir);
  }

  Fixture(int64_t rows, bool over_limit) {
    TableConfig c;
    c.set_name("emb");
    c.set_dim(kDim);
    c.mutable_optimizer()->set_kind(SparseOptimizerConfig::ADAGRAD);
    SparseTable::Options options;
    if (over_limit) {
      const char* tmp = std::getenv("TMPDIR");
      spill_dir = std::string(tmp != nullptr ? tmp : "/tmp") + "/table_bench_spill_" + std::to_string(getpid());
      std::filesystem::create_directories(spill_dir);
      budget = std::make_unique<MemoryBudget>(rows * (sizeof(RowMeta) + 8 * kDim) / 10);
      options.budget = budget.get();
      options.spill_dir = spill_dir;
    }
    table = std::move(*SparseTable::Create(c, options));
    buf.assign(static_cast<size_t>(kKeys) * kDim, 0.001f);
    std::vector<uint64_t> keys(kKeys);
    for (int64_t r = 0; r < rows; r += kKeys) {
      for (int i = 0; i < kKeys; ++i) keys[i] = Mix64(r + i + 1);
      (void)table->Push(keys, buf.data(), nullptr, 0);
    }
    std::mt19937_64 rng(1);
    sets.resize(over_limit ? 64 : 8);
    for (auto& s : sets) {
      s.resize(kKeys);
      for (auto& k : s) k = Mix64(rng() % rows + 1);
    }
  }
};

// A plain hash-map store: a node and a vector per key, the same Adagrad
// update (no L2) and initial rows as the table's.
struct PlainMap {
  TableConfig config;
  std::unordered_map<uint64_t, std::vector<float>> rows;
  std::vector<std::vector<uint64_t>> sets;
  std::vector<float> buf;

  explicit PlainMap(int64_t n) {
    config.set_name("emb");
    config.set_dim(kDim);
    config.mutable_optimizer()->set_kind(SparseOptimizerConfig::ADAGRAD);
    rows.reserve(n);
    for (int64_t r = 0; r < n; ++r) Row(Mix64(r + 1));
    buf.assign(static_cast<size_t>(kKeys) * kDim, 0.001f);
    std::mt19937_64 rng(1);
    sets.resize(8);
    for (auto& s : sets) {
      s.resize(kKeys);
      for (auto& k : s) k = Mix64(rng() % n + 1);
    }
  }
  std::vector<float>& Row(uint64_t key) {
    auto [it, added] = rows.try_emplace(key);
    if (added) {
      it->second.resize(2 * kDim, config.optimizer().initial_accumulator());
      InitializeRow(config, key, it->second.data(), kDim);
    }
    return it->second;
  }
  void Pull(const std::vector<uint64_t>& keys, float* out) {
    for (size_t i = 0; i < keys.size(); ++i) {
      auto it = rows.find(keys[i]);
      if (it != rows.end()) {
        std::memcpy(out + i * kDim, it->second.data(), sizeof(float) * kDim);
      } else {
        InitializeRow(config, keys[i], out + i * kDim, kDim);
      }
    }
  }
  void Push(const std::vector<uint64_t>& keys, const float* grads) {
    const float lr = config.optimizer().learning_rate(), eps = config.optimizer().epsilon();
    for (size_t i = 0; i < keys.size(); ++i) {
      float* w = Row(keys[i]).data();
      float* acc = w + kDim;
      for (int d = 0; d < kDim; ++d) {
        const float g = grads[i * kDim + d];
        acc[d] += g * g;
        w[d] -= lr * g / (std::sqrt(acc[d]) + eps);
      }
    }
  }
};

PlainMap& GetPlain(int64_t rows) {
  static std::map<int64_t, std::unique_ptr<PlainMap>> cache;
  auto& m = cache[rows];
  if (!m) m = std::make_unique<PlainMap>(rows);
  return *m;
}

Fixture& Get(int64_t rows, bool over_limit = false) {
  static std::map<std::pair<int64_t, bool>, std::unique_ptr<Fixture>> cache;
  auto& f = cache[{rows, over_limit}];
  if (!f) f = std::make_unique<Fixture>(rows, over_limit);
  return *f;
}

void Pulls(benchmark::State& state, Fixture& f) {
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(f.table->Pull(f.sets[i++ % f.sets.size()], f.buf.data()));
  }
  state.SetItemsProcessed(state.iterations() * kKeys);
}

void Pushes(benchmark::State& state, Fixture& f) {
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(f.table->Push(f.sets[i++ % f.sets.size()], f.buf.data(), nullptr, 1));
  }
  state.SetItemsProcessed(state.iterations() * kKeys);
}

void BM_Pull(benchmark::State& state) { Pulls(state, Get(state.range(0))); }
BENCHMARK(BM_Pull)->Arg(1000000)->Arg(10000000)->Unit(benchmark::kMillisecond);

void BM_PushAdagrad(benchmark::State& state) { Pushes(state, Get(state.range(0))); }
BENCHMARK(BM_PushAdagrad)->Arg(1000000)->Arg(10000000)->Unit(benchmark::kMillisecond);

void BM_PullPlainMap(benchmark::State& state) {
  PlainMap& m = GetPlain(state.range(0));
  size_t i = 0;
  for (auto _ : state) m.Pull(m.sets[i++ % m.sets.size()], m.buf.data());
  state.SetItemsProcessed(state.iterations() * kKeys);
}
BENCHMARK(BM_PullPlainMap)->Arg(1000000)->Arg(10000000)->Unit(benchmark::kMillisecond);

void BM_PushAdagradPlainMap(benchmark::State& state) {
  PlainMap& m = GetPlain(state.range(0));
  size_t i = 0;
  for (auto _ : state) m.Push(m.sets[i++ % m.sets.size()], m.buf.data());
  state.SetItemsProcessed(state.iterations() * kKeys);
}
BENCHMARK(BM_PushAdagradPlainMap)->Arg(1000000)->Arg(10000000)->Unit(benchmark::kMillisecond);

void BM_PullOverLimit(benchmark::State& state) { Pulls(state, Get(state.range(0), true)); }
BENCHMARK(BM_PullOverLimit)->Arg(10000000)->Unit(benchmark::kMillisecond)->MinTime(3);

void BM_PushAdagradOverLimit(benchmark::State& state) { Pushes(state, Get(state.range(0), true)); }
BENCHMARK(BM_PushAdagradOverLimit)->Arg(10000000)->Unit(benchmark::kMillisecond)->MinTime(3);

}  // namespace
}  // namespace ctrps

BENCHMARK_MAIN();
