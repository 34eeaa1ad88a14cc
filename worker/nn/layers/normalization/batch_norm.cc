#include "worker/nn/layers/normalization/batch_norm.h"

#include <cassert>

namespace ctrps::nn {

BatchNorm::BatchNorm(Graph* graph, Node* in, const std::string& name, float eps, float momentum,
                     int64_t channels)
    : arena_(graph->arena()),
      in_(in),
      channels_(channels > 0 ? channels : in->width()),
      out_(graph->NewNode(in->width(), in->per_sample())),
      gamma_(arena_->AddParameter(name + ".weight", channels_, Initializer::Constant(1.0f))),
      beta_(arena_->AddParameter(name + ".bias", channels_, Initializer::Zeros())),
      norm_(arena_, name, channels_, eps, momentum) {
  assert(in->width() % channels_ == 0);
}

void BatchNorm::Forward(const ForwardContext& ctx) {
  const int64_t c = channels_, rows = in_->rows() * (in_->width() / c);
  xhat_.resize(rows * c);
  norm_.Forward(in_->value(), rows, ctx.training, xhat_.data());
  const float* gamma = arena_->value(gamma_);
  const float* beta = arena_->value(beta_);
  for (int64_t r = 0; r < rows; ++r) {
    const float* h = xhat_.data() + r * c;
    float* y = out_->mutable_value() + r * c;
    for (int64_t j = 0; j < c; ++j) y[j] = gamma[j] * h[j] + beta[j];
  }
}

void BatchNorm::Backward() {
  const int64_t c = channels_, rows = in_->rows() * (in_->width() / c);
  const float* gamma = arena_->value(gamma_);
  float* dgamma = arena_->grad(gamma_);
  float* dbeta = arena_->grad(beta_);
  dxhat_.resize(rows * c);
  for (int64_t r = 0; r < rows; ++r) {
    const float* dy = out_->grad() + r * c;
    const float* h = xhat_.data() + r * c;
    float* g = dxhat_.data() + r * c;
    for (int64_t j = 0; j < c; ++j) {
      dgamma[j] += dy[j] * h[j];
      dbeta[j] += dy[j];
      g[j] = dy[j] * gamma[j];
    }
  }
  if (!in_->needs_grad()) return;
  norm_.Backward(dxhat_.data(), xhat_.data(), rows, in_->BeginGradWrite(), in_->grad());
}

}  // namespace ctrps::nn
