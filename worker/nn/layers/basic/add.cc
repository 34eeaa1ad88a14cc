#include "worker/nn/layers/basic/add.h"

#include <cassert>
#include <cstring>
#include <utility>

namespace ctrps::nn {

Add::Add(Graph* graph, std::vector<Node*> inputs, float scale)
    : inputs_(std::move(inputs)),
      out_(graph->NewNode(inputs_.at(0)->width(), inputs_.at(0)->per_sample())),
      scale_(scale) {
  for ([[maybe_unused]] const Node* n : inputs_) {
    assert(n->width() == out_->width() && n->per_sample() == out_->per_sample());
  }
}

void Add::Forward(const ForwardContext&) {
  const int64_t n = out_->size();
  float* y = out_->mutable_value();
  std::memcpy(y, inputs_[0]->value(), sizeof(float) * n);
  for (size_t k = 1; k < inputs_.size(); ++k) {
    const float* x = inputs_[k]->value();
    for (int64_t i = 0; i < n; ++i) y[i] += x[i];
  }
  if (scale_ != 1.0f) {
    for (int64_t i = 0; i < n; ++i) y[i] *= scale_;
  }
}

void Add::Backward() {
  const float* dy = out_->grad();
  for (Node* in : inputs_) {
    if (!in->needs_grad()) continue;
    StoreGrad(in->BeginGradWrite(), in->grad(), in->size(),
              [&](int64_t i) { return scale_ * dy[i]; });
  }
}

}  // namespace ctrps::nn
