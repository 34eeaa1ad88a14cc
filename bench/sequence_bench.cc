// Sequence models' speed: MEANPOOL, DIN and SDIM forward + backward on the
// shape of conf/seq_*.pbtxt (5 fields of dim 16: user, item, cate and two
// histories of up to max_len rows with item and cate as targets; MLP 200-80
// Dice; DIN attention 64-16 Dice; SDIM 48 hashes of 3 bits), one thread.
// History lengths are uniform in [max_len / 10, max_len], as ctr-datagen's
// sequence mode draws them.
//
//   sequence_bench [--benchmark_filter=...] [--benchmark_min_time=...]
//
// Arguments: batch, max_len. Counters: samples_per_second, history rows per
// second, and the model's forward FLOPs per sample at full length.
#include <cblas.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <vector>

#include "benchmark/benchmark.h"
#include "common/proto/config.pb.h"
#include "worker/nn/models/ctr_model.h"
#include "worker/nn/random.h"

namespace ctrps::nn {
namespace {

constexpr int kFields = 5, kDim = 16;

std::vector<float> Random(int64_t n, uint64_t seed, float scale) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (float& x : v) x = rng.Uniform(-scale, scale);
  return v;
}

void Run(benchmark::State& state, ModelConfig::Type type) {
  const int batch = static_cast<int>(state.range(0));
  const int max_len = static_cast<int>(state.range(1));
  ModelConfig config;
  config.set_type(type);
  config.add_hidden_units(200);
  config.add_hidden_units(80);
  config.set_activation("dice");
  config.add_attention_hidden_units(64);
  config.add_attention_hidden_units(16);
  config.set_attention_activation("dice");
  config.set_sdim_num_hashes(48);
  config.set_sdim_hash_bits(3);
  const std::vector<SequenceSpec> specs = {{.field = 3, .target_field = 1, .max_len = max_len},
                                           {.field = 4, .target_field = 2, .max_len = max_len}};
  auto created = CreateModel(config, kFields, kDim, 2021, specs);
  if (!created.ok()) {
    state.SkipWithError(created.status().ToString().c_str());
    return;
  }
  std::unique_ptr<CtrModel> model = *std::move(created);
  const int64_t seq_size = int64_t{batch} * max_len * kDim;
  std::vector<float> emb = Random(int64_t{batch} * kFields * kDim, 1, 0.1f);
  std::vector<float> seq1 = Random(seq_size, 2, 0.1f), seq2 = Random(seq_size, 3, 0.1f);
  std::vector<float> d_logits = Random(batch, 4, 1.0f / batch);
  std::vector<float> logits(batch), d_emb(emb.size()), d_seq1(seq_size), d_seq2(seq_size);
  std::vector<int32_t> lengths(batch);
  Rng rng(5);
  int64_t rows = 0;
  for (int32_t& l : lengths) {
    l = max_len / 10 + static_cast<int32_t>(rng.Next() % (max_len - max_len / 10 + 1));
    rows += 2 * l;
  }
  ModelInput in{batch, kFields, kDim, emb.data(), nullptr};
  in.sequences = {{3, 1, max_len, seq1.data(), lengths.data()},
                  {4, 2, max_len, seq2.data(), lengths.data()}};
  ModelInputGrad grad{d_emb.data(), nullptr};
  grad.d_seq_emb = {d_seq1.data(), d_seq2.data()};
  // Warm-up sizes every buffer; the timed steps allocate nothing.
  model->Forward(in, true, logits.data());
  model->Backward(in, d_logits.data(), &grad);
  for (auto _ : state) {
    model->params().ZeroGrads();
    model->Forward(in, true, logits.data());
    model->Backward(in, d_logits.data(), &grad);
    benchmark::DoNotOptimize(d_seq1.data());
    benchmark::ClobberMemory();
  }
  state.counters["samples_per_second"] =
      benchmark::Counter(static_cast<double>(batch), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["history_rows_per_second"] =
      benchmark::Counter(static_cast<double>(rows), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["fwd_flops_per_sample"] = static_cast<double>(model->FlopsPerSample());
}

void BM_MeanPool(benchmark::State& state) { Run(state, ModelConfig::MEANPOOL); }
void BM_Din(benchmark::State& state) { Run(state, ModelConfig::DIN); }
void BM_Sdim(benchmark::State& state) { Run(state, ModelConfig::SDIM); }

#define SEQUENCE_ARGS \
  Args({256, 100})->Args({256, 500})->Unit(benchmark::kMillisecond)->UseRealTime()
BENCHMARK(BM_MeanPool)->SEQUENCE_ARGS;
BENCHMARK(BM_Din)->SEQUENCE_ARGS;
BENCHMARK(BM_Sdim)->SEQUENCE_ARGS;

}  // namespace
}  // namespace ctrps::nn

int main(int argc, char** argv) {
  openblas_set_num_threads(1);
  benchmark::AddCustomContext("openblas_core", openblas_get_corename());
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
