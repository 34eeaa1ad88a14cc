#include "worker/nn/dense_optimizer.h"

#include <cassert>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace ctrps::nn {

absl::StatusOr<std::unique_ptr<DenseOptimizer>> DenseOptimizer::Create(
    const DenseOptimizerConfig& config, int64_t size) {
  if (!(config.learning_rate() > 0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "train.dense_optimizer.learning_rate must be > 0, got ", config.learning_rate()));
  }
  if (!(config.l2() >= 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("train.dense_optimizer.l2 must be >= 0, got ", config.l2()));
  }
  if (!(config.beta1() >= 0 && config.beta1() < 1) ||
      !(config.beta2() >= 0 && config.beta2() < 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("train.dense_optimizer.beta1 and beta2 must be in [0, 1), got ",
                     config.beta1(), " and ", config.beta2()));
  }
  if (!(config.epsilon() >= 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("train.dense_optimizer.epsilon must be >= 0, got ", config.epsilon()));
  }
  return std::unique_ptr<DenseOptimizer>(new DenseOptimizer(config, size));
}

DenseOptimizer::DenseOptimizer(const DenseOptimizerConfig& config, int64_t size)
    : kind_(config.kind()),
      size_(size),
      lr_(config.learning_rate()),
      l2_(config.l2()),
      beta1_(config.beta1()),
      beta2_(config.beta2()),
      eps_(config.epsilon()) {
  switch (kind_) {
    case DenseOptimizerConfig::ADAM:
      state_.assign(2 * size, 0.0f);
      break;
    case DenseOptimizerConfig::ADAGRAD:
      state_.assign(size, 0.0f);
      break;
    case DenseOptimizerConfig::SGD:
      break;
  }
}

void DenseOptimizer::Step(std::span<float> values, std::span<const float> grads) {
  assert(static_cast<int64_t>(values.size()) == size_ &&
         static_cast<int64_t>(grads.size()) == size_);
  ++step_;
  float* w = values.data();
  const float* g = grads.data();
  const int64_t n = size_;
  const float lr = lr_, l2 = l2_, eps = eps_;
  switch (kind_) {
    case DenseOptimizerConfig::SGD:
      for (int64_t i = 0; i < n; ++i) w[i] -= lr * (g[i] + l2 * w[i]);
      return;
    case DenseOptimizerConfig::ADAGRAD: {
      float* s = state_.data();
      for (int64_t i = 0; i < n; ++i) {
        const float gi = g[i] + l2 * w[i];
        s[i] += gi * gi;
        w[i] -= lr * gi / (std::sqrt(s[i]) + eps);
      }
      return;
    }
    case DenseOptimizerConfig::ADAM: {
      float* m = state_.data();
      float* v = state_.data() + n;
      const float b1 = beta1_, b2 = beta2_;
      const double t = static_cast<double>(step_);
      const float step_size = static_cast<float>(lr / (1.0 - std::pow(double{b1}, t)));
      const float inv_bc2_sqrt = static_cast<float>(1.0 / std::sqrt(1.0 - std::pow(double{b2}, t)));
      for (int64_t i = 0; i < n; ++i) {
        const float gi = g[i] + l2 * w[i];
        m[i] = b1 * m[i] + (1.0f - b1) * gi;
        v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
        w[i] -= step_size * m[i] / (std::sqrt(v[i]) * inv_bc2_sqrt + eps);
      }
      return;
    }
  }
}

}  // namespace ctrps::nn
