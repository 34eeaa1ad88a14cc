#include "worker/nn/layers/basic/concat.h"

#include <cassert>
#include <cstring>
#include <utility>

namespace ctrps::nn {
namespace {

int64_t TotalWidth(const std::vector<Node*>& inputs) {
  int64_t w = 0;
  for (const Node* n : inputs) w += n->width();
  return w;
}

}  // namespace

Concat::Concat(Graph* graph, std::vector<Node*> inputs)
    : inputs_(std::move(inputs)),
      out_(graph->NewNode(TotalWidth(inputs_), inputs_.at(0)->per_sample())) {
  for ([[maybe_unused]] const Node* n : inputs_) assert(n->per_sample() == out_->per_sample());
}

void Concat::Forward(const ForwardContext&) {
  const int64_t rows = out_->rows(), w = out_->width();
  int64_t col = 0;
  for (const Node* in : inputs_) {
    const int64_t iw = in->width();
    for (int64_t r = 0; r < rows; ++r) {
      std::memcpy(out_->mutable_value() + r * w + col, in->value() + r * iw, sizeof(float) * iw);
    }
    col += iw;
  }
}

void Concat::Backward() {
  const int64_t rows = out_->rows(), w = out_->width();
  int64_t col = 0;
  for (Node* in : inputs_) {
    const int64_t iw = in->width();
    if (in->needs_grad()) {
      const bool accumulate = in->BeginGradWrite();
      for (int64_t r = 0; r < rows; ++r) {
        const float* dy = out_->grad() + r * w + col;
        StoreGrad(accumulate, in->grad() + r * iw, iw, [&](int64_t j) { return dy[j]; });
      }
    }
    col += iw;
  }
}

}  // namespace ctrps::nn
