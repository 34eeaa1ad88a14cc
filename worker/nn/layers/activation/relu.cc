#include "worker/nn/layers/activation/relu.h"

namespace ctrps::nn {

Relu::Relu(Graph* graph, Node* in) : in_(in), out_(graph->NewNode(in->width(), in->per_sample())) {}

void Relu::Forward(const ForwardContext&) {
  const float* x = in_->value();
  float* y = out_->mutable_value();
  const int64_t n = in_->size();
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void Relu::Backward() {
  if (!in_->needs_grad()) return;
  const float* y = out_->value();
  const float* dy = out_->grad();
  // A select, not a branch: the signs are random, a branch would mispredict.
  StoreGrad(in_->BeginGradWrite(), in_->grad(), in_->size(),
            [&](int64_t i) { return y[i] > 0.0f ? dy[i] : 0.0f; });
}

}  // namespace ctrps::nn
