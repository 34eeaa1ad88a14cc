#include "worker/nn/layers/basic/split.h"

#include <cassert>
#include <cstring>

namespace ctrps::nn {

Split::Split(Graph* graph, Node* in, const std::vector<int64_t>& widths) : in_(in) {
  int64_t total = 0;
  for (int64_t w : widths) {
    outputs_.push_back(graph->NewNode(w, in->per_sample()));
    total += w;
  }
  assert(total == in->width());
}

void Split::Forward(const ForwardContext&) {
  const int64_t rows = in_->rows(), w = in_->width();
  int64_t col = 0;
  for (Node* out : outputs_) {
    const int64_t ow = out->width();
    for (int64_t r = 0; r < rows; ++r) {
      std::memcpy(out->mutable_value() + r * ow, in_->value() + r * w + col, sizeof(float) * ow);
    }
    col += ow;
  }
}

void Split::Backward() {
  if (!in_->needs_grad()) return;
  const int64_t rows = in_->rows(), w = in_->width();
  const bool accumulate = in_->BeginGradWrite();
  int64_t col = 0;
  for (const Node* out : outputs_) {
    const int64_t ow = out->width();
    for (int64_t r = 0; r < rows; ++r) {
      const float* dy = out->grad() + r * ow;
      StoreGrad(accumulate, in_->grad() + r * w + col, ow, [&](int64_t j) { return dy[j]; });
    }
    col += ow;
  }
}

}  // namespace ctrps::nn
