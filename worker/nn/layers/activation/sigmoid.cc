#include "worker/nn/layers/activation/sigmoid.h"

#include <cmath>

namespace ctrps::nn {

Sigmoid::Sigmoid(Graph* graph, Node* in, float scale)
    : in_(in), out_(graph->NewNode(in->width(), in->per_sample())), scale_(scale) {}

void Sigmoid::Forward(const ForwardContext&) {
  const float* x = in_->value();
  float* y = out_->mutable_value();
  const int64_t n = in_->size();
  for (int64_t i = 0; i < n; ++i) y[i] = scale_ / (1.0f + std::exp(-x[i]));
}

void Sigmoid::Backward() {
  if (!in_->needs_grad()) return;
  const float* y = out_->value();
  const float* dy = out_->grad();
  const float inv_scale = 1.0f / scale_;
  // d(s * sig)/dx = s * sig * (1 - sig) = y * (1 - y / s).
  StoreGrad(in_->BeginGradWrite(), in_->grad(), in_->size(),
            [&](int64_t i) { return dy[i] * y[i] * (1.0f - y[i] * inv_scale); });
}

}  // namespace ctrps::nn
