#include "worker/nn/layers/activation/tanh.h"

#include <cmath>

namespace ctrps::nn {

Tanh::Tanh(Graph* graph, Node* in) : in_(in), out_(graph->NewNode(in->width(), in->per_sample())) {}

void Tanh::Forward(const ForwardContext&) {
  const float* x = in_->value();
  float* y = out_->mutable_value();
  const int64_t n = in_->size();
  for (int64_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
}

void Tanh::Backward() {
  if (!in_->needs_grad()) return;
  const float* y = out_->value();
  const float* dy = out_->grad();
  StoreGrad(in_->BeginGradWrite(), in_->grad(), in_->size(),
            [&](int64_t i) { return dy[i] * (1.0f - y[i] * y[i]); });
}

}  // namespace ctrps::nn
