#include "worker/nn/layers/normalization/layer_norm.h"

#include <cmath>

namespace ctrps::nn {

LayerNorm::LayerNorm(Graph* graph, Node* in, const std::string& name, float eps)
    : arena_(graph->arena()),
      in_(in),
      out_(graph->NewNode(in->width(), in->per_sample())),
      eps_(eps),
      gamma_(arena_->AddParameter(name + ".weight", in->width(), Initializer::Constant(1.0f))),
      beta_(arena_->AddParameter(name + ".bias", in->width(), Initializer::Zeros())) {}

void LayerNorm::Forward(const ForwardContext&) {
  const int64_t rows = in_->rows(), c = in_->width();
  xhat_.resize(rows * c);
  inv_std_.resize(rows);
  const float* gamma = arena_->value(gamma_);
  const float* beta = arena_->value(beta_);
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = in_->value() + r * c;
    float sum = 0.0f;
    for (int64_t j = 0; j < c; ++j) sum += x[j];
    const float mean = sum / c;
    float sum2 = 0.0f;
    for (int64_t j = 0; j < c; ++j) sum2 += (x[j] - mean) * (x[j] - mean);
    const float inv_std = 1.0f / std::sqrt(sum2 / c + eps_);
    inv_std_[r] = inv_std;
    float* h = xhat_.data() + r * c;
    float* y = out_->mutable_value() + r * c;
    for (int64_t j = 0; j < c; ++j) {
      h[j] = (x[j] - mean) * inv_std;
      y[j] = gamma[j] * h[j] + beta[j];
    }
  }
}

void LayerNorm::Backward() {
  const int64_t rows = in_->rows(), c = in_->width();
  const float* gamma = arena_->value(gamma_);
  float* dgamma = arena_->grad(gamma_);
  float* dbeta = arena_->grad(beta_);
  const bool needs_dx = in_->needs_grad();
  const bool accumulate = needs_dx && in_->BeginGradWrite();
  for (int64_t r = 0; r < rows; ++r) {
    const float* dy = out_->grad() + r * c;
    const float* h = xhat_.data() + r * c;
    float mean_g = 0.0f, mean_gh = 0.0f;
    for (int64_t j = 0; j < c; ++j) {
      dgamma[j] += dy[j] * h[j];
      dbeta[j] += dy[j];
      const float g = dy[j] * gamma[j];
      mean_g += g;
      mean_gh += g * h[j];
    }
    if (!needs_dx) continue;
    mean_g /= c;
    mean_gh /= c;
    const float inv_std = inv_std_[r];
    // dx = inv_std * (g - mean(g) - xhat * mean(g * xhat)), g = dy * gamma.
    StoreGrad(accumulate, in_->grad() + r * c, c,
              [&](int64_t j) { return inv_std * (dy[j] * gamma[j] - mean_g - h[j] * mean_gh); });
  }
}

}  // namespace ctrps::nn
