#include "worker/nn/gradient_check.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "gtest/gtest.h"
#include "worker/nn/random.h"

namespace ctrps::nn {
namespace {

struct Checker {
  Graph* graph;
  std::span<Node* const> outputs;
  int64_t batch;
  const GradCheckOptions& options;
  std::vector<std::vector<float>> seeds;

  double Loss() {
    graph->Forward(batch, {options.training, options.step});
    double loss = 0;
    for (size_t o = 0; o < outputs.size(); ++o) {
      const float* y = outputs[o]->value();
      for (int64_t i = 0; i < outputs[o]->size(); ++i) loss += double{seeds[o][i]} * y[i];
    }
    return loss;
  }

  // Compares analytic[i] with the central difference of Loss() in x[i].
  void Check(const std::string& what, float* x, const float* analytic, int64_t n) {
    const int64_t stride = std::max<int64_t>(1, n / options.max_checks_per_tensor);
    int failures = 0;
    for (int64_t i = 0; i < n; i += stride) {
      const float saved = x[i];
      x[i] = saved + options.eps;
      const double plus = Loss();
      x[i] = saved - options.eps;
      const double minus = Loss();
      x[i] = saved;
      const double numeric = (plus - minus) / (2.0 * options.eps);
      const double a = analytic[i];
      const double tol = options.atol + options.rtol * std::max(std::fabs(a), std::fabs(numeric));
      if (std::fabs(a - numeric) > tol && ++failures <= 5) {
        ADD_FAILURE() << what << "[" << i << "]: analytic " << a << " vs numeric " << numeric;
      }
    }
    EXPECT_EQ(failures, 0) << what;
  }
};

}  // namespace

std::vector<float> RandomValues(int64_t n, uint64_t seed, float lo, float hi) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (float& x : v) x = rng.Uniform(lo, hi);
  return v;
}

void RandomizeParameters(ParameterArena* arena, uint64_t seed, float bound) {
  Rng rng(seed);
  for (const ParamInfo& p : arena->parameters()) {
    float* v = arena->value(p.slot);
    for (int64_t i = 0; i < p.slot.size; ++i) v[i] = rng.Uniform(-bound, bound);
  }
}

void ExpectGradientsMatch(Graph* graph, ParameterArena* arena, std::span<Node* const> inputs,
                          std::vector<std::vector<float>> input_values,
                          std::span<Node* const> outputs, int64_t batch,
                          const GradCheckOptions& options) {
  ASSERT_EQ(inputs.size(), input_values.size());
  std::vector<std::vector<float>> input_grads(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    ASSERT_EQ(static_cast<int64_t>(input_values[i].size()), batch * inputs[i]->width());
    input_grads[i].assign(input_values[i].size(), std::nanf(""));
    graph->BindInput(inputs[i], input_values[i].data(),
                     inputs[i]->needs_grad() ? input_grads[i].data() : nullptr);
  }
  Checker checker{graph, outputs, batch, options, {}};
  graph->Forward(batch, {options.training, options.step});
  std::vector<const float*> seed_ptrs;
  for (size_t o = 0; o < outputs.size(); ++o) {
    checker.seeds.push_back(RandomValues(outputs[o]->size(), options.seed + 100 + o));
  }
  for (auto& s : checker.seeds) seed_ptrs.push_back(s.data());

  arena->ZeroGrads();
  graph->Backward(outputs, seed_ptrs);
  const std::vector<float> param_grads(arena->grads().begin(), arena->grads().end());

  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i]->needs_grad()) continue;
    checker.Check("input" + std::to_string(i), input_values[i].data(), input_grads[i].data(),
                  static_cast<int64_t>(input_values[i].size()));
  }
  for (const ParamInfo& p : arena->parameters()) {
    checker.Check(p.name, arena->value(p.slot), param_grads.data() + p.slot.offset, p.slot.size);
  }
}

}  // namespace ctrps::nn
