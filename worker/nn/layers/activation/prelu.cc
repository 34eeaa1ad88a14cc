#include "worker/nn/layers/activation/prelu.h"

namespace ctrps::nn {

Prelu::Prelu(Graph* graph, Node* in, const std::string& name)
    : arena_(graph->arena()), in_(in), out_(graph->NewNode(in->width(), in->per_sample())) {
  slope_ = arena_->AddParameter(name + ".weight", in->width(), Initializer::Constant(0.1f));
}

void Prelu::Forward(const ForwardContext&) {
  const int64_t rows = in_->rows(), c = in_->width();
  const float* a = arena_->value(slope_);
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = in_->value() + r * c;
    float* y = out_->mutable_value() + r * c;
    for (int64_t j = 0; j < c; ++j) y[j] = x[j] > 0.0f ? x[j] : a[j] * x[j];
  }
}

void Prelu::Backward() {
  const int64_t rows = in_->rows(), c = in_->width();
  const float* a = arena_->value(slope_);
  float* da = arena_->grad(slope_);
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = in_->value() + r * c;
    const float* dy = out_->grad() + r * c;
    for (int64_t j = 0; j < c; ++j) da[j] += x[j] > 0.0f ? 0.0f : dy[j] * x[j];
  }
  if (!in_->needs_grad()) return;
  const bool accumulate = in_->BeginGradWrite();
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = in_->value() + r * c;
    const float* dy = out_->grad() + r * c;
    StoreGrad(accumulate, in_->grad() + r * c, c,
              [&](int64_t j) { return x[j] > 0.0f ? dy[j] : a[j] * dy[j]; });
  }
}

}  // namespace ctrps::nn
