// The sparse table alone (no network): pull and push of 100k unique keys
// against tables of 1M and 10M rows, dim 16, Adagrad.
//   table_bench [--benchmark_filter=...]
#include <map>
#include <random>
#include <vector>

#include "benchmark/benchmark.h"
#include "common/hash.h"
#include "ps/sparse_table.h"

namespace ctrps {
namespace {

constexpr int kDim = 16;
constexpr int kKeys = 100000;

struct Fixture {
  std::unique_ptr<SparseTable> table;
  std::vector<std::vector<uint64_t>> sets;
  std::vector<float> buf;

  explicit Fixture(int64_t rows) {
    TableConfig c;
    c.set_name("emb");
    c.set_dim(kDim);
    c.mutable_optimizer()->set_kind(SparseOptimizerConfig::ADAGRAD);
    table = std::move(*SparseTable::Create(c, {}));
    buf.assign(static_cast<size_t>(kKeys) * kDim, 0.001f);
    std::vector<uint64_t> keys(kKeys);
    for (int64_t r = 0; r < rows; r += kKeys) {
      for (int i = 0; i < kKeys; ++i) keys[i] = Mix64(r + i + 1);
      (void)table->Push(keys, buf.data(), nullptr, 0);
    }
    std::mt19937_64 rng(1);
    sets.resize(8);
    for (auto& s : sets) {
      s.resize(kKeys);
      for (auto& k : s) k = Mix64(rng() % rows + 1);
    }
  }
};

Fixture& Get(int64_t rows) {
  static std::map<int64_t, std::unique_ptr<Fixture>> cache;
  auto& f = cache[rows];
  if (!f) f = std::make_unique<Fixture>(rows);
  return *f;
}

void BM_Pull(benchmark::State& state) {
  Fixture& f = Get(state.range(0));
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(f.table->Pull(f.sets[i++ % 8], f.buf.data()));
  }
  state.SetItemsProcessed(state.iterations() * kKeys);
}
BENCHMARK(BM_Pull)->Arg(1000000)->Arg(10000000)->Unit(benchmark::kMillisecond);

void BM_PushAdagrad(benchmark::State& state) {
  Fixture& f = Get(state.range(0));
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(f.table->Push(f.sets[i++ % 8], f.buf.data(), nullptr, 1));
  }
  state.SetItemsProcessed(state.iterations() * kKeys);
}
BENCHMARK(BM_PushAdagrad)->Arg(1000000)->Arg(10000000)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace ctrps

BENCHMARK_MAIN();
