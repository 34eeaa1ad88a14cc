#include "worker/nn/layers/conv/field_conv.h"

#include <cblas.h>

#include <cassert>
#include <cmath>
#include <cstring>

namespace ctrps::nn {

FieldConv::FieldConv(Graph* graph, Node* in, int64_t height, int64_t dim, int64_t in_channels,
                     int64_t out_channels, int64_t kernel, const std::string& name)
    : arena_(graph->arena()),
      in_(in),
      height_(height),
      dim_(dim),
      in_channels_(in_channels),
      out_channels_(out_channels),
      kernel_(kernel),
      pad_((kernel - 1) / 2) {
  assert(kernel % 2 == 1 && in->width() == height * dim * in_channels);
  out_ = graph->NewNode(height * dim * out_channels, in->per_sample());
  const float bound = 1.0f / std::sqrt(static_cast<float>(kernel * in_channels));
  weight_ = arena_->AddParameter(name + ".weight", out_channels * kernel * in_channels,
                                 Initializer::Uniform(bound));
  bias_ = arena_->AddParameter(name + ".bias", out_channels, Initializer::Uniform(bound));
}

void FieldConv::Forward(const ForwardContext&) {
  const int64_t rows = in_->rows(), kc = kernel_ * in_channels_, dc = dim_ * in_channels_;
  const int64_t m = rows * height_ * dim_;
  cols_.resize(m * kc);
  // im2col: row (b, h, d) holds in[b, h + j - pad, d, :] for j = 0..kernel-1.
  for (int64_t b = 0; b < rows; ++b) {
    const float* x = in_->value() + b * height_ * dc;
    for (int64_t h = 0; h < height_; ++h) {
      float* row0 = cols_.data() + (b * height_ + h) * dim_ * kc;
      for (int64_t j = 0; j < kernel_; ++j) {
        const int64_t src = h + j - pad_;
        for (int64_t d = 0; d < dim_; ++d) {
          float* dst = row0 + d * kc + j * in_channels_;
          if (src < 0 || src >= height_) {
            std::memset(dst, 0, sizeof(float) * in_channels_);
          } else {
            std::memcpy(dst, x + src * dc + d * in_channels_, sizeof(float) * in_channels_);
          }
        }
      }
    }
  }
  float* y = out_->mutable_value();
  const float* bias = arena_->value(bias_);
  for (int64_t r = 0; r < m; ++r)
    std::memcpy(y + r * out_channels_, bias, sizeof(float) * out_channels_);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, out_channels_, kc, 1.0f, cols_.data(), kc,
              arena_->value(weight_), kc, 1.0f, y, out_channels_);
}

void FieldConv::Backward() {
  const int64_t rows = in_->rows(), kc = kernel_ * in_channels_, dc = dim_ * in_channels_;
  const int64_t m = rows * height_ * dim_;
  const float* dy = out_->grad();
  // dW += dy^T cols; dbias += column sums of dy.
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out_channels_, kc, m, 1.0f, dy,
              out_channels_, cols_.data(), kc, 1.0f, arena_->grad(weight_), kc);
  float* db = arena_->grad(bias_);
  for (int64_t r = 0; r < m; ++r) {
    const float* row = dy + r * out_channels_;
    for (int64_t o = 0; o < out_channels_; ++o) db[o] += row[o];
  }
  if (!in_->needs_grad()) return;
  // The windows are not needed past dW: their gradient overwrites them.
  float* dcols = cols_.data();
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, kc, out_channels_, 1.0f, dy,
              out_channels_, arena_->value(weight_), kc, 0.0f, dcols, kc);
  // col2im: each window value goes back to the input cell it was copied from.
  const bool accumulate = in_->BeginGradWrite();
  if (!accumulate) std::memset(in_->grad(), 0, sizeof(float) * rows * in_->width());
  for (int64_t b = 0; b < rows; ++b) {
    float* dx = in_->grad() + b * height_ * dc;
    for (int64_t h = 0; h < height_; ++h) {
      const float* row0 = dcols + (b * height_ + h) * dim_ * kc;
      for (int64_t j = 0; j < kernel_; ++j) {
        const int64_t src = h + j - pad_;
        if (src < 0 || src >= height_) continue;
        for (int64_t d = 0; d < dim_; ++d) {
          const float* g = row0 + d * kc + j * in_channels_;
          float* t = dx + src * dc + d * in_channels_;
          for (int64_t c = 0; c < in_channels_; ++c) t[c] += g[c];
        }
      }
    }
  }
}

int64_t FieldConv::FlopsPerSample() const {
  return 2 * height_ * dim_ * kernel_ * in_channels_ * out_channels_;
}

}  // namespace ctrps::nn
