// Dense tower speed: DeepFM forward + backward on Criteo's shape, and the
// same matrix products through cblas_sgemm alone, on one thread.
//
//   dense_bench [--benchmark_filter=...] [--benchmark_repetitions=N] ...
//
// The "gemm_gflops" counter of both benchmarks counts the MLP's GEMM FLOPs
// (forward, weight gradient, input gradient), so their ratio is the share of
// the sgemm-alone speed the whole model keeps; it is printed at the end.
//
// Debian's OpenBLAS 0.3.21 (DYNAMIC_ARCH) does not recognise CPUs newer than
// it and falls back to its Prescott (SSE3) kernels, 6-7x slower on an
// AVX-512 machine. The kernel set is chosen when the library loads, from the
// OPENBLAS_CORETYPE environment variable (e.g. OPENBLAS_CORETYPE=SkylakeX or
// Haswell); the context line "openblas_core" says which one ran.
#include <cblas.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "common/proto/config.pb.h"
#include "worker/nn/models/ctr_model.h"
#include "worker/nn/random.h"

namespace ctrps::nn {
namespace {

constexpr int kFields = 39;
constexpr int kDim = 16;
const std::vector<int> kHidden = {400, 400, 400};

std::vector<float> Random(int64_t n, uint64_t seed, float scale) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (float& x : v) x = rng.Uniform(-scale, scale);
  return v;
}

// FLOPs of the MLP's products per sample, forward and backward:
// each Linear(in, out) does 2*in*out for y, dW and dx.
int64_t MlpGemmFlopsPerSample() {
  int64_t flops = 0;
  int in = kFields * kDim;
  std::vector<int> outs = kHidden;
  outs.push_back(1);
  for (int out : outs) {
    flops += 3 * 2 * int64_t{in} * out;
    in = out;
  }
  return flops;
}

void SetCounters(benchmark::State& state, int batch) {
  state.counters["samples_per_second"] =
      benchmark::Counter(static_cast<double>(batch), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["gemm_gflops"] =
      benchmark::Counter(static_cast<double>(batch) * MlpGemmFlopsPerSample() * 1e-9,
                         benchmark::Counter::kIsIterationInvariantRate);
}

void BM_DeepFmForwardBackward(benchmark::State& state) {
  const int batch = static_cast<int>(state.range(0));
  ModelConfig config;
  config.set_type(ModelConfig::DEEPFM);
  for (int units : kHidden) config.add_hidden_units(units);
  auto created = CreateModel(config, kFields, kDim, 2021);
  if (!created.ok()) {
    state.SkipWithError(created.status().ToString().c_str());
    return;
  }
  std::unique_ptr<CtrModel> model = *std::move(created);
  std::vector<float> emb = Random(int64_t{batch} * kFields * kDim, 1, 0.1f);
  std::vector<float> linear = Random(int64_t{batch} * kFields, 2, 0.1f);
  std::vector<float> d_logits = Random(batch, 3, 1.0f / batch);
  std::vector<float> logits(batch), d_emb(emb.size()), d_linear(linear.size());
  const ModelInput in{batch, kFields, kDim, emb.data(), linear.data()};
  ModelInputGrad grad{d_emb.data(), d_linear.data()};
  // Warm-up sizes every buffer; the timed steps allocate nothing.
  model->Forward(in, true, logits.data());
  model->Backward(in, d_logits.data(), &grad);
  for (auto _ : state) {
    model->params().ZeroGrads();
    model->Forward(in, true, logits.data());
    model->Backward(in, d_logits.data(), &grad);
    benchmark::DoNotOptimize(d_emb.data());
    benchmark::ClobberMemory();
  }
  SetCounters(state, batch);
  state.counters["model_fwd_flops_per_sample"] = static_cast<double>(model->FlopsPerSample());
}

// The MLP's GEMMs of one forward + backward step with the same shapes and
// layouts as Linear: y = x W^T, dW += dy^T x, dx = dy W.
void BM_MlpSgemmOnly(benchmark::State& state) {
  const int batch = static_cast<int>(state.range(0));
  std::vector<int> widths = {kFields * kDim};
  widths.insert(widths.end(), kHidden.begin(), kHidden.end());
  widths.push_back(1);
  const int layers = static_cast<int>(widths.size()) - 1;
  std::vector<std::vector<float>> acts, grads, weights, weight_grads;
  for (int l = 0; l <= layers; ++l) {
    acts.push_back(Random(int64_t{batch} * widths[l], 10 + l, 1.0f));
    grads.push_back(Random(int64_t{batch} * widths[l], 20 + l, 1.0f));
  }
  for (int l = 0; l < layers; ++l) {
    weights.push_back(Random(int64_t{widths[l]} * widths[l + 1], 30 + l, 0.05f));
    weight_grads.push_back(std::vector<float>(weights.back().size()));
  }
  for (auto _ : state) {
    for (int l = 0; l < layers; ++l) {
      const int k = widths[l], n = widths[l + 1];
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, batch, n, k, 1.0f, acts[l].data(), k,
                  weights[l].data(), k, 0.0f, acts[l + 1].data(), n);
    }
    for (int l = layers - 1; l >= 0; --l) {
      const int k = widths[l], n = widths[l + 1];
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, k, batch, 1.0f, grads[l + 1].data(),
                  n, acts[l].data(), k, 1.0f, weight_grads[l].data(), k);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, batch, k, n, 1.0f, grads[l + 1].data(),
                  n, weights[l].data(), k, 0.0f, grads[l].data(), k);
    }
    benchmark::ClobberMemory();
  }
  SetCounters(state, batch);
}

BENCHMARK(BM_DeepFmForwardBackward)->Arg(4096)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_MlpSgemmOnly)->Arg(4096)->Unit(benchmark::kMillisecond)->UseRealTime();

// Console output plus, at the end, DeepFM's speed as a share of sgemm alone.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs) {
      if (run.run_type != Run::RT_Iteration && run.aggregate_name != "median") continue;
      auto it = run.counters.find("samples_per_second");
      if (it != run.counters.end()) rates_[run.run_name.function_name] = it->second.value;
    }
    ConsoleReporter::ReportRuns(runs);
  }

  void PrintRatio() const {
    auto model = rates_.find("BM_DeepFmForwardBackward");
    auto gemm = rates_.find("BM_MlpSgemmOnly");
    if (model == rates_.end() || gemm == rates_.end()) return;
    std::printf("DeepFM fwd+bwd / sgemm-alone (same MLP GEMM FLOPs): %.1f%%\n",
                100.0 * model->second / gemm->second);
  }

 private:
  std::map<std::string, double> rates_;
};

}  // namespace
}  // namespace ctrps::nn

int main(int argc, char** argv) {
  openblas_set_num_threads(1);
  const char* core = openblas_get_corename();
  benchmark::AddCustomContext("openblas_core", core);
  if (std::strcmp(core, "Prescott") == 0) {
    std::fprintf(stderr,
                 "dense_bench: OpenBLAS runs its Prescott (SSE3) kernels; if this CPU has AVX2 or "
                 "AVX-512, rerun with OPENBLAS_CORETYPE=Haswell or SkylakeX\n");
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  ctrps::nn::RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.PrintRatio();
  benchmark::Shutdown();
  return 0;
}
