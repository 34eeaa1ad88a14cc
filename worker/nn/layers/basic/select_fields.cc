#include "worker/nn/layers/basic/select_fields.h"

#include <cassert>
#include <cstring>
#include <utility>

namespace ctrps::nn {

SelectFields::SelectFields(Graph* graph, Node* in, int64_t dim, std::vector<int> fields)
    : in_(in), dim_(dim), fields_(std::move(fields)) {
  assert(!fields_.empty() && in->width() % dim == 0);
  for ([[maybe_unused]] int f : fields_) assert(f >= 0 && f < in->width() / dim);
  out_ = graph->NewNode(static_cast<int64_t>(fields_.size()) * dim, in->per_sample());
}

void SelectFields::Forward(const ForwardContext&) {
  const int64_t rows = in_->rows(), w = in_->width(), ow = out_->width();
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = in_->value() + r * w;
    float* y = out_->mutable_value() + r * ow;
    for (size_t i = 0; i < fields_.size(); ++i) {
      std::memcpy(y + i * dim_, x + fields_[i] * dim_, sizeof(float) * dim_);
    }
  }
}

void SelectFields::Backward() {
  if (!in_->needs_grad()) return;
  const int64_t rows = in_->rows(), w = in_->width(), ow = out_->width();
  const bool accumulate = in_->BeginGradWrite();
  if (!accumulate) std::memset(in_->grad(), 0, sizeof(float) * rows * w);
  for (int64_t r = 0; r < rows; ++r) {
    const float* dy = out_->grad() + r * ow;
    float* dx = in_->grad() + r * w;
    for (size_t i = 0; i < fields_.size(); ++i) {
      for (int64_t j = 0; j < dim_; ++j) dx[fields_[i] * dim_ + j] += dy[i * dim_ + j];
    }
  }
}

}  // namespace ctrps::nn
