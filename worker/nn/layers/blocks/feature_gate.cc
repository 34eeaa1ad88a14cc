#include "worker/nn/layers/blocks/feature_gate.h"

#include <cassert>

namespace ctrps::nn {

FeatureGate::FeatureGate(Graph* graph, Node* in, Node* gate)
    : in_(in), gate_(gate), out_(graph->NewNode(in->width(), in->per_sample())) {
  assert(gate->width() == in->width());
  assert(in->per_sample() || !gate->per_sample());
}

void FeatureGate::Forward(const ForwardContext&) {
  const int64_t rows = in_->rows(), w = in_->width();
  const bool shared = !gate_->per_sample();
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = in_->value() + r * w;
    const float* g = gate_->value() + (shared ? 0 : r * w);
    float* y = out_->mutable_value() + r * w;
    for (int64_t j = 0; j < w; ++j) y[j] = x[j] * g[j];
  }
}

void FeatureGate::Backward() {
  const int64_t rows = in_->rows(), w = in_->width();
  const bool shared = !gate_->per_sample();
  const float* dy = out_->grad();
  if (gate_->needs_grad()) {
    const bool accumulate = gate_->BeginGradWrite();
    if (shared) {
      float* dg = gate_->grad();
      if (!accumulate) {
        for (int64_t j = 0; j < w; ++j) dg[j] = 0.0f;
      }
      for (int64_t r = 0; r < rows; ++r) {
        const float* x = in_->value() + r * w;
        const float* dyr = dy + r * w;
        for (int64_t j = 0; j < w; ++j) dg[j] += dyr[j] * x[j];
      }
    } else {
      const float* x = in_->value();
      StoreGrad(accumulate, gate_->grad(), rows * w, [&](int64_t i) { return dy[i] * x[i]; });
    }
  }
  if (in_->needs_grad()) {
    const bool accumulate = in_->BeginGradWrite();
    for (int64_t r = 0; r < rows; ++r) {
      const float* g = gate_->value() + (shared ? 0 : r * w);
      const float* dyr = dy + r * w;
      StoreGrad(accumulate, in_->grad() + r * w, w, [&](int64_t j) { return dyr[j] * g[j]; });
    }
  }
}

}  // namespace ctrps::nn
