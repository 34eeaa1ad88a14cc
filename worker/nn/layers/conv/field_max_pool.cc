#include "worker/nn/layers/conv/field_max_pool.h"

#include <algorithm>
#include <cassert>
#include <cstring>

namespace ctrps::nn {

FieldMaxPool::FieldMaxPool(Graph* graph, Node* in, int64_t height, int64_t row_width, int64_t pool)
    : in_(in),
      height_(height),
      row_width_(row_width),
      pool_(pool),
      out_height_(OutHeight(height, pool)) {
  assert(pool >= 1 && in->width() == height * row_width);
  out_ = graph->NewNode(out_height_ * row_width, in->per_sample());
}

void FieldMaxPool::Forward(const ForwardContext&) {
  const int64_t rows = in_->rows(), w = row_width_;
  argmax_.resize(rows * out_height_ * w);
  for (int64_t b = 0; b < rows; ++b) {
    const float* x = in_->value() + b * height_ * w;
    float* y = out_->mutable_value() + b * out_height_ * w;
    int32_t* arg = argmax_.data() + b * out_height_ * w;
    for (int64_t o = 0; o < out_height_; ++o) {
      const int64_t begin = o * pool_, end = std::min(height_, begin + pool_);
      std::memcpy(y + o * w, x + begin * w, sizeof(float) * w);
      std::fill_n(arg + o * w, w, static_cast<int32_t>(begin));
      for (int64_t h = begin + 1; h < end; ++h) {
        const float* xr = x + h * w;
        for (int64_t i = 0; i < w; ++i) {
          if (xr[i] > y[o * w + i]) {
            y[o * w + i] = xr[i];
            arg[o * w + i] = static_cast<int32_t>(h);
          }
        }
      }
    }
  }
}

void FieldMaxPool::Backward() {
  if (!in_->needs_grad()) return;
  const int64_t rows = in_->rows(), w = row_width_;
  const bool accumulate = in_->BeginGradWrite();
  if (!accumulate) std::memset(in_->grad(), 0, sizeof(float) * rows * in_->width());
  for (int64_t b = 0; b < rows; ++b) {
    float* dx = in_->grad() + b * height_ * w;
    const float* dy = out_->grad() + b * out_height_ * w;
    const int32_t* arg = argmax_.data() + b * out_height_ * w;
    for (int64_t o = 0; o < out_height_; ++o) {
      for (int64_t i = 0; i < w; ++i) dx[arg[o * w + i] * w + i] += dy[o * w + i];
    }
  }
}

}  // namespace ctrps::nn
