#include "worker/nn/layers/interaction/first_order.h"

namespace ctrps::nn {

FirstOrder::FirstOrder(Graph* graph, Node* in, bool use_bias, const std::string& name)
    : arena_(graph->arena()),
      in_(in),
      out_(graph->NewNode(1, in->per_sample())),
      use_bias_(use_bias) {
  if (use_bias_) bias_ = arena_->AddParameter(name + ".bias", 1, Initializer::Zeros());
}

void FirstOrder::Forward(const ForwardContext&) {
  const int64_t rows = in_->rows(), f = in_->width();
  const float bias = use_bias_ ? arena_->value(bias_)[0] : 0.0f;
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = in_->value() + r * f;
    float sum = bias;
    for (int64_t j = 0; j < f; ++j) sum += x[j];
    out_->mutable_value()[r] = sum;
  }
}

void FirstOrder::Backward() {
  const int64_t rows = in_->rows(), f = in_->width();
  const float* dy = out_->grad();
  if (use_bias_) {
    float dbias = 0.0f;
    for (int64_t r = 0; r < rows; ++r) dbias += dy[r];
    arena_->grad(bias_)[0] += dbias;
  }
  if (!in_->needs_grad()) return;
  const bool accumulate = in_->BeginGradWrite();
  for (int64_t r = 0; r < rows; ++r) {
    const float g = dy[r];
    StoreGrad(accumulate, in_->grad() + r * f, f, [&](int64_t) { return g; });
  }
}

}  // namespace ctrps::nn
