#include "worker/nn/layers/basic/replace_fields.h"

#include <algorithm>
#include <cassert>
#include <cstring>

namespace ctrps::nn {

ReplaceFields::ReplaceFields(Graph* graph, Node* in, int64_t dim,
                             std::vector<std::pair<int, Node*>> replacements)
    : in_(in),
      out_(graph->NewNode(in->width(), in->per_sample())),
      dim_(dim),
      replacements_(std::move(replacements)) {
  assert(dim > 0 && in->width() % dim == 0);
  replaced_.assign(in->width() / dim, false);
  for (const auto& [field, node] : replacements_) {
    assert(field >= 0 && (field + 1) * dim <= in->width());
    assert(node->width() == dim && node->per_sample() == in->per_sample());
    assert(!replaced_[field]);
    replaced_[field] = true;
  }
}

void ReplaceFields::Forward(const ForwardContext&) {
  const int64_t rows = out_->rows(), w = out_->width();
  std::memcpy(out_->mutable_value(), in_->value(), sizeof(float) * rows * w);
  for (const auto& [field, node] : replacements_) {
    for (int64_t r = 0; r < rows; ++r) {
      std::memcpy(out_->mutable_value() + r * w + field * dim_, node->value() + r * dim_,
                  sizeof(float) * dim_);
    }
  }
}

void ReplaceFields::Backward() {
  const int64_t rows = out_->rows(), w = out_->width();
  const float* dy = out_->grad();
  for (const auto& [field, node] : replacements_) {
    if (!node->needs_grad()) continue;
    const bool accumulate = node->BeginGradWrite();
    for (int64_t r = 0; r < rows; ++r) {
      const float* src = dy + r * w + field * dim_;
      StoreGrad(accumulate, node->grad() + r * dim_, dim_, [&](int64_t j) { return src[j]; });
    }
  }
  if (!in_->needs_grad()) return;
  const bool accumulate = in_->BeginGradWrite();
  const int64_t fields = w / dim_;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t f = 0; f < fields; ++f) {
      float* g = in_->grad() + r * w + f * dim_;
      const float* src = dy + r * w + f * dim_;
      if (replaced_[f]) {
        // The slot's input was never read.
        if (!accumulate) std::fill(g, g + dim_, 0.0f);
        continue;
      }
      StoreGrad(accumulate, g, dim_, [&](int64_t j) { return src[j]; });
    }
  }
}

}  // namespace ctrps::nn
