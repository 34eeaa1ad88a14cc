#include "worker/nn/layers/activation/dice.h"

#include <cmath>

namespace ctrps::nn {

Dice::Dice(Graph* graph, Node* in, const std::string& name, float eps, float momentum)
    : arena_(graph->arena()),
      in_(in),
      out_(graph->NewNode(in->width(), in->per_sample())),
      alpha_(arena_->AddParameter(name + ".alpha", in->width(), Initializer::Zeros())),
      norm_(arena_, name + ".bn", in->width(), eps, momentum) {}

void Dice::Forward(const ForwardContext& ctx) {
  const int64_t rows = in_->rows(), c = in_->width(), n = rows * c;
  xhat_.resize(n);
  p_.resize(n);
  norm_.Forward(in_->value(), rows, ctx.training, xhat_.data());
  const float* alpha = arena_->value(alpha_);
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = in_->value() + r * c;
    const float* h = xhat_.data() + r * c;
    float* p = p_.data() + r * c;
    float* y = out_->mutable_value() + r * c;
    for (int64_t j = 0; j < c; ++j) {
      p[j] = 1.0f / (1.0f + std::exp(-h[j]));
      y[j] = x[j] * (alpha[j] + (1.0f - alpha[j]) * p[j]);
    }
  }
}

void Dice::Backward() {
  const int64_t rows = in_->rows(), c = in_->width();
  const float* alpha = arena_->value(alpha_);
  float* dalpha = arena_->grad(alpha_);
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = in_->value() + r * c;
    const float* p = p_.data() + r * c;
    const float* dy = out_->grad() + r * c;
    for (int64_t j = 0; j < c; ++j) dalpha[j] += dy[j] * x[j] * (1.0f - p[j]);
  }
  if (!in_->needs_grad()) return;
  // Direct path d(out)/dx = alpha + (1 - alpha) p, then the path through p:
  // d(out)/d(xhat) = x (1 - alpha) p (1 - p), which the normalizer carries to x.
  dxhat_.resize(rows * c);
  const bool accumulate = in_->BeginGradWrite();
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = in_->value() + r * c;
    const float* p = p_.data() + r * c;
    const float* dy = out_->grad() + r * c;
    float* g = dxhat_.data() + r * c;
    for (int64_t j = 0; j < c; ++j) g[j] = dy[j] * x[j] * (1.0f - alpha[j]) * p[j] * (1.0f - p[j]);
    StoreGrad(accumulate, in_->grad() + r * c, c,
              [&](int64_t j) { return dy[j] * (alpha[j] + (1.0f - alpha[j]) * p[j]); });
  }
  norm_.Backward(dxhat_.data(), xhat_.data(), rows, /*accumulate=*/true, in_->grad());
}

}  // namespace ctrps::nn
