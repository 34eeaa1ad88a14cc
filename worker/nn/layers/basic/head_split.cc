#include "worker/nn/layers/basic/head_split.h"

#include <cassert>
#include <cstring>

namespace ctrps::nn {

HeadSplit::HeadSplit(Graph* graph, Node* in, int num_fields, int num_heads)
    : in_(in),
      out_(graph->NewNode(in->width(), in->per_sample())),
      fields_(num_fields),
      heads_(num_heads),
      dim_(in->width() / num_fields) {
  assert(num_fields >= 1 && num_heads >= 1 && in->width() == fields_ * dim_);
  assert(dim_ > 0 && dim_ % (2 * num_heads) == 0);
}

template <typename F>
void HeadSplit::ForEachRun(F copy) const {
  const int64_t d = dim_ / heads_, q = d / 2, fields = fields_;
  for (int64_t h = 0; h < heads_; ++h) {
    for (int64_t f = 0; f < fields; ++f) {
      copy(f * dim_ + h * d, h * fields * d + f * q, q);
      copy(f * dim_ + h * d + q, h * fields * d + (fields + f) * q, q);
    }
  }
}

void HeadSplit::Forward(const ForwardContext&) {
  const int64_t w = in_->width();
  for (int64_t r = 0; r < in_->rows(); ++r) {
    const float* x = in_->value() + r * w;
    float* y = out_->mutable_value() + r * w;
    ForEachRun([&](int64_t from, int64_t to, int64_t n) {
      std::memcpy(y + to, x + from, sizeof(float) * n);
    });
  }
}

void HeadSplit::Backward() {
  if (!in_->needs_grad()) return;
  const int64_t w = in_->width();
  const bool accumulate = in_->BeginGradWrite();
  for (int64_t r = 0; r < in_->rows(); ++r) {
    const float* g = out_->grad() + r * w;
    float* dx = in_->grad() + r * w;
    ForEachRun([&](int64_t from, int64_t to, int64_t n) {
      StoreGrad(accumulate, dx + from, n, [&](int64_t k) { return g[to + k]; });
    });
  }
}

}  // namespace ctrps::nn
