#include "worker/nn/layers/normalization/normalizer.h"

#include <algorithm>
#include <cmath>

#include "worker/nn/graph.h"

namespace ctrps::nn {

Normalizer::Normalizer(ParameterArena* arena, const std::string& name, int64_t width, float eps,
                       float momentum)
    : arena_(arena),
      width_(width),
      eps_(eps),
      momentum_(momentum),
      mean_(width),
      inv_std_(width),
      mean_g_(width),
      mean_gh_(width),
      sum_(width),
      sum2_(width) {
  running_mean_ = arena_->AddBuffer(name + ".running_mean", width, 0.0f);
  running_var_ = arena_->AddBuffer(name + ".running_var", width, 1.0f);
}

void Normalizer::Forward(const float* x, int64_t rows, bool training, float* xhat) {
  const int64_t c = width_;
  last_training_ = training;
  float* mean = mean_.data();
  float* inv_std = inv_std_.data();
  if (training) {
    // Two passes (mean, then squared deviations) in double: stable for
    // columns with a large mean.
    double* sum = sum_.data();
    double* sum2 = sum2_.data();
    std::fill(sum_.begin(), sum_.end(), 0.0);
    std::fill(sum2_.begin(), sum2_.end(), 0.0);
    for (int64_t r = 0; r < rows; ++r) {
      const float* row = x + r * c;
      for (int64_t j = 0; j < c; ++j) sum[j] += row[j];
    }
    for (int64_t j = 0; j < c; ++j) mean[j] = static_cast<float>(sum[j] / rows);
    for (int64_t r = 0; r < rows; ++r) {
      const float* row = x + r * c;
      for (int64_t j = 0; j < c; ++j) {
        const double d = row[j] - mean[j];
        sum2[j] += d * d;
      }
    }
    float* rm = arena_->buffer(running_mean_);
    float* rv = arena_->buffer(running_var_);
    const double unbias = rows > 1 ? static_cast<double>(rows) / (rows - 1) : 1.0;
    for (int64_t j = 0; j < c; ++j) {
      const double var = sum2[j] / rows;
      inv_std[j] = static_cast<float>(1.0 / std::sqrt(var + eps_));
      rm[j] = (1.0f - momentum_) * rm[j] + momentum_ * mean[j];
      rv[j] = (1.0f - momentum_) * rv[j] + momentum_ * static_cast<float>(var * unbias);
    }
  } else {
    const float* rm = arena_->buffer(running_mean_);
    const float* rv = arena_->buffer(running_var_);
    for (int64_t j = 0; j < c; ++j) {
      mean[j] = rm[j];
      inv_std[j] = 1.0f / std::sqrt(rv[j] + eps_);
    }
  }
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * c;
    float* out = xhat + r * c;
    for (int64_t j = 0; j < c; ++j) out[j] = (row[j] - mean[j]) * inv_std[j];
  }
}

void Normalizer::Backward(const float* dxhat, const float* xhat, int64_t rows, bool accumulate,
                          float* dx) {
  const int64_t c = width_;
  const float* inv_std = inv_std_.data();
  if (!last_training_) {
    // The running statistics are constants: dx = dxhat / std.
    for (int64_t r = 0; r < rows; ++r) {
      StoreGrad(accumulate, dx + r * c, c,
                [&, g = dxhat + r * c](int64_t j) { return g[j] * inv_std[j]; });
    }
    return;
  }
  // dx = inv_std * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)).
  double* sum = sum_.data();
  double* sum2 = sum2_.data();
  std::fill(sum_.begin(), sum_.end(), 0.0);
  std::fill(sum2_.begin(), sum2_.end(), 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    const float* g = dxhat + r * c;
    const float* h = xhat + r * c;
    for (int64_t j = 0; j < c; ++j) {
      sum[j] += g[j];
      sum2[j] += g[j] * h[j];
    }
  }
  float* mean_g = mean_g_.data();
  float* mean_gh = mean_gh_.data();
  for (int64_t j = 0; j < c; ++j) {
    mean_g[j] = static_cast<float>(sum[j] / rows);
    mean_gh[j] = static_cast<float>(sum2[j] / rows);
  }
  for (int64_t r = 0; r < rows; ++r) {
    const float* g = dxhat + r * c;
    const float* h = xhat + r * c;
    StoreGrad(accumulate, dx + r * c, c,
              [&](int64_t j) { return inv_std[j] * (g[j] - mean_g[j] - h[j] * mean_gh[j]); });
  }
}

}  // namespace ctrps::nn
