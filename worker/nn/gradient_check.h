// Test helper: checks a graph's backward pass against central finite
// differences. For tests only (links GoogleTest).
#ifndef CTRPS_WORKER_NN_GRADIENT_CHECK_H_
#define CTRPS_WORKER_NN_GRADIENT_CHECK_H_

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "worker/nn/graph.h"
#include "worker/nn/parameter_arena.h"

namespace ctrps::nn {

struct GradCheckOptions {
  bool training = true;
  uint64_t step = 0;
  float eps = 1e-3f;
  // An analytic gradient a matches a numeric one n when
  // |a - n| <= atol + rtol * max(|a|, |n|).
  double rtol = 1e-2;
  double atol = 1e-3;
  // Elements checked per input and per parameter (evenly spaced when larger).
  int max_checks_per_tensor = 400;
  uint64_t seed = 1;
};

// EXPECTs that analytic[i] matches the central difference of loss() in x[i]
// for (up to options.max_checks_per_tensor of) i in [0, n). `loss` reads x.
void ExpectFiniteDifferencesMatch(const std::string& what, const std::function<double()>& loss,
                                  float* x, const float* analytic, int64_t n,
                                  const GradCheckOptions& options = {});

// Values uniform in [lo, hi), deterministic in `seed`.
std::vector<float> RandomValues(int64_t n, uint64_t seed, float lo = -1.0f, float hi = 1.0f);

// Sets every parameter of `arena` to U(-bound, bound) (away from the kinks
// that zero-initialised biases put exactly on ReLU's corner).
void RandomizeParameters(ParameterArena* arena, uint64_t seed, float bound = 0.5f);

// Binds inputs[i] to input_values[i] ([batch, width]), takes
// loss = sum_o <R_o, outputs[o]> with fixed random R, and EXPECTs that
// d(loss)/d(input) for each input that needs a gradient, and d(loss)/d(param)
// for every parameter of `arena`, match central differences.
void ExpectGradientsMatch(Graph* graph, ParameterArena* arena, std::span<Node* const> inputs,
                          std::vector<std::vector<float>> input_values,
                          std::span<Node* const> outputs, int64_t batch,
                          const GradCheckOptions& options = {});

}  // namespace ctrps::nn

#endif  // CTRPS_WORKER_NN_GRADIENT_CHECK_H_
