#include "worker/nn/layers/basic/head_mean_linear.h"

#include <cblas.h>

#include <cassert>

namespace ctrps::nn {

HeadMeanLinear::HeadMeanLinear(Graph* graph, Node* in, int num_heads, const std::string& name)
    : arena_(graph->arena()),
      in_(in),
      out_(graph->NewNode(1, in->per_sample())),
      heads_(num_heads),
      d_(in->width() / num_heads) {
  assert(num_heads >= 1 && in->width() % num_heads == 0 && d_ > 0);
  w_ = arena_->AddParameter(name + ".weight", d_, Initializer::XavierUniform(d_, 1));
  bias_ = arena_->AddParameter(name + ".bias", 1, Initializer::Zeros());
}

void HeadMeanLinear::Forward(const ForwardContext&) {
  const int64_t rows = in_->rows(), n = rows * heads_;
  per_head_.resize(n);
  cblas_sgemv(CblasRowMajor, CblasNoTrans, n, d_, 1.0f, in_->value(), d_, arena_->value(w_), 1,
              0.0f, per_head_.data(), 1);
  const float bias = arena_->value(bias_)[0];
  const float inv_h = 1.0f / static_cast<float>(heads_);
  float* y = out_->mutable_value();
  for (int64_t r = 0; r < rows; ++r) {
    float sum = 0.0f;
    for (int64_t h = 0; h < heads_; ++h) sum += per_head_[r * heads_ + h];
    y[r] = sum * inv_h + bias;
  }
}

void HeadMeanLinear::Backward() {
  const int64_t rows = in_->rows(), n = rows * heads_, d = d_;
  const float* g = out_->grad();
  const float inv_h = 1.0f / static_cast<float>(heads_);
  // Each head row's gradient is g[r] / H: per_head_ holds it for the GEMVs.
  float db = 0.0f;
  for (int64_t r = 0; r < rows; ++r) {
    db += g[r];
    for (int64_t h = 0; h < heads_; ++h) per_head_[r * heads_ + h] = g[r] * inv_h;
  }
  arena_->grad(bias_)[0] += db;
  cblas_sgemv(CblasRowMajor, CblasTrans, n, d, 1.0f, in_->value(), d, per_head_.data(), 1, 1.0f,
              arena_->grad(w_), 1);
  if (!in_->needs_grad()) return;
  const float* w = arena_->value(w_);
  const bool accumulate = in_->BeginGradWrite();
  for (int64_t i = 0; i < n; ++i) {
    const float gi = per_head_[i];
    StoreGrad(accumulate, in_->grad() + i * d, d, [&](int64_t k) { return gi * w[k]; });
  }
}

int64_t HeadMeanLinear::FlopsPerSample() const { return in_->per_sample() ? 2 * heads_ * d_ : 0; }

}  // namespace ctrps::nn
