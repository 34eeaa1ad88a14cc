#include "worker/nn/layers/interaction/self_mask_cross.h"

#include <cblas.h>

#include <algorithm>
#include <cassert>
#include <cmath>

namespace ctrps::nn {

SelfMaskCross::SelfMaskCross(Graph* graph, Node* x0, Node* x, int num_heads, bool layer_norm,
                             const std::string& name, bool batch_norm)
    : arena_(graph->arena()),
      x0_(x0),
      x_(x),
      out_(graph->NewNode(x->width(), x->per_sample() || x0->per_sample())),
      heads_(num_heads),
      d_(x->width() / num_heads),
      layer_norm_(layer_norm),
      batch_norm_(batch_norm) {
  assert(num_heads >= 1 && x->width() % num_heads == 0 && d_ % 2 == 0 && d_ >= 2);
  assert(x0->width() == x->width() && x0->per_sample() == x->per_sample());
  const int64_t half = d_ / 2;
  w_ = arena_->AddParameter(name + ".w", half * d_, Initializer::XavierUniform(d_, half));
  b_ = arena_->AddParameter(name + ".b", d_, Initializer::UniformRange(0.0f, 1.0f));
  if (layer_norm) {
    gamma_ = arena_->AddParameter(name + ".layer_norm.weight", half, Initializer::Constant(1.0f));
    beta_ = arena_->AddParameter(name + ".layer_norm.bias", half, Initializer::Zeros());
  }
  if (batch_norm) {
    bn_gamma_ =
        arena_->AddParameter(name + ".batch_norm.weight", heads_, Initializer::Constant(1.0f));
    bn_beta_ = arena_->AddParameter(name + ".batch_norm.bias", heads_, Initializer::Zeros());
    bn_mean_ = arena_->AddBuffer(name + ".batch_norm.running_mean", heads_, 0.0f);
    bn_var_ = arena_->AddBuffer(name + ".batch_norm.running_var", heads_, 1.0f);
    bn_inv_std_.resize(heads_);
  }
}

void SelfMaskCross::BatchNormForward(bool training) {
  const int64_t rows = x_->rows(), heads = heads_, half = d_ / 2;
  const int64_t count = rows * half;  // values per head
  bn_training_ = training;
  bn_hat_.resize(rows * heads * half);
  float* rm = arena_->buffer(bn_mean_);
  float* rv = arena_->buffer(bn_var_);
  const float* gamma = arena_->value(bn_gamma_);
  const float* beta = arena_->value(bn_beta_);
  for (int64_t j = 0; j < heads; ++j) {
    float mean, inv_std;
    if (training) {
      double sum = 0.0, sum2 = 0.0;
      for (int64_t r = 0; r < rows; ++r) {
        const float* h = h_.data() + (r * heads + j) * half;
        for (int64_t k = 0; k < half; ++k) sum += h[k];
      }
      mean = static_cast<float>(sum / count);
      for (int64_t r = 0; r < rows; ++r) {
        const float* h = h_.data() + (r * heads + j) * half;
        for (int64_t k = 0; k < half; ++k) sum2 += (h[k] - mean) * (h[k] - mean);
      }
      const double var = sum2 / count;
      inv_std = static_cast<float>(1.0 / std::sqrt(var + 1e-5));
      const double unbias = count > 1 ? static_cast<double>(count) / (count - 1) : 1.0;
      rm[j] = 0.9f * rm[j] + 0.1f * mean;
      rv[j] = 0.9f * rv[j] + 0.1f * static_cast<float>(var * unbias);
    } else {
      mean = rm[j];
      inv_std = 1.0f / std::sqrt(rv[j] + 1e-5f);
    }
    bn_inv_std_[j] = inv_std;
    for (int64_t r = 0; r < rows; ++r) {
      float* h = h_.data() + (r * heads + j) * half;
      float* hat = bn_hat_.data() + (r * heads + j) * half;
      for (int64_t k = 0; k < half; ++k) {
        hat[k] = (h[k] - mean) * inv_std;
        h[k] = gamma[j] * hat[k] + beta[j];
      }
    }
  }
}

void SelfMaskCross::BatchNormBackward() {
  const int64_t rows = x_->rows(), heads = heads_, half = d_ / 2;
  const double count = static_cast<double>(rows * half);
  const float* gamma = arena_->value(bn_gamma_);
  float* dgamma = arena_->grad(bn_gamma_);
  float* dbeta = arena_->grad(bn_beta_);
  for (int64_t j = 0; j < heads; ++j) {
    double sum_g = 0.0, sum_gh = 0.0;
    for (int64_t r = 0; r < rows; ++r) {
      const float* g = dh_.data() + (r * heads + j) * half;
      const float* hat = bn_hat_.data() + (r * heads + j) * half;
      for (int64_t k = 0; k < half; ++k) {
        sum_g += g[k];
        sum_gh += g[k] * hat[k];
      }
    }
    dgamma[j] += static_cast<float>(sum_gh);
    dbeta[j] += static_cast<float>(sum_g);
    const float scale = gamma[j] * bn_inv_std_[j];
    // Training: dx = gamma inv_std (g - mean(g) - hat mean(g hat)); the
    // running statistics are constants in evaluation: dx = gamma inv_std g.
    const float mean_g = bn_training_ ? static_cast<float>(sum_g / count) : 0.0f;
    const float mean_gh = bn_training_ ? static_cast<float>(sum_gh / count) : 0.0f;
    for (int64_t r = 0; r < rows; ++r) {
      float* g = dh_.data() + (r * heads + j) * half;
      const float* hat = bn_hat_.data() + (r * heads + j) * half;
      for (int64_t k = 0; k < half; ++k) g[k] = scale * (g[k] - mean_g - hat[k] * mean_gh);
    }
  }
}

void SelfMaskCross::Forward(const ForwardContext& ctx) {
  const int64_t n = x_->rows() * heads_, d = d_, half = d / 2;
  const float* x = x_->value();
  const float* x0 = x0_->value();
  h_.resize(n * half);
  mask_.resize(n * half);
  c_.resize(n * d);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, half, d, 1.0f, x, d, arena_->value(w_), d,
              0.0f, h_.data(), half);
  if (batch_norm_) BatchNormForward(ctx.training);
  if (layer_norm_) {
    xhat_.resize(n * half);
    inv_std_.resize(n);
    const float* gamma = arena_->value(gamma_);
    const float* beta = arena_->value(beta_);
    for (int64_t r = 0; r < n; ++r) {
      const float* h = h_.data() + r * half;
      float sum = 0.0f;
      for (int64_t j = 0; j < half; ++j) sum += h[j];
      const float mean = sum / half;
      float sum2 = 0.0f;
      for (int64_t j = 0; j < half; ++j) sum2 += (h[j] - mean) * (h[j] - mean);
      const float inv_std = 1.0f / std::sqrt(sum2 / half + 1e-5f);
      inv_std_[r] = inv_std;
      float* hat = xhat_.data() + r * half;
      float* m = mask_.data() + r * half;
      for (int64_t j = 0; j < half; ++j) {
        hat[j] = (h[j] - mean) * inv_std;
        m[j] = std::max(gamma[j] * hat[j] + beta[j], 0.0f);
      }
    }
  } else {
    for (int64_t i = 0; i < n * half; ++i) mask_[i] = std::max(h_[i], 0.0f);
  }
  const float* b = arena_->value(b_);
  float* y = out_->mutable_value();
  for (int64_t r = 0; r < n; ++r) {
    const float* h = h_.data() + r * half;
    const float* m = mask_.data() + r * half;
    float* c = c_.data() + r * d;
    for (int64_t j = 0; j < half; ++j) {
      c[j] = h[j] + b[j];
      c[half + j] = h[j] * m[j] + b[half + j];
    }
    const float* x0r = x0 + r * d;
    const float* xr = x + r * d;
    float* yr = y + r * d;
    for (int64_t j = 0; j < d; ++j) yr[j] = x0r[j] * c[j] + xr[j];
  }
}

void SelfMaskCross::Backward() {
  const int64_t n = x_->rows() * heads_, d = d_, half = d / 2;
  const float* x = x_->value();
  const float* x0 = x0_->value();
  const float* g = out_->grad();
  float* db = arena_->grad(b_);
  dh_.resize(n * half);
  // dc = g * x0; dh = dc_lo + dc_hi * mask; d(mask) = dc_hi * h.
  // dh_ first holds d(mask), then d(h).
  for (int64_t r = 0; r < n; ++r) {
    const float* gr = g + r * d;
    const float* x0r = x0 + r * d;
    const float* h = h_.data() + r * half;
    float* dm = dh_.data() + r * half;
    for (int64_t j = 0; j < d; ++j) db[j] += gr[j] * x0r[j];
    for (int64_t j = 0; j < half; ++j) dm[j] = gr[half + j] * x0r[half + j] * h[j];
  }
  if (layer_norm_) {
    const float* gamma = arena_->value(gamma_);
    float* dgamma = arena_->grad(gamma_);
    float* dbeta = arena_->grad(beta_);
    for (int64_t r = 0; r < n; ++r) {
      float* dm = dh_.data() + r * half;
      const float* m = mask_.data() + r * half;
      const float* hat = xhat_.data() + r * half;
      float mean_g = 0.0f, mean_gh = 0.0f;
      for (int64_t j = 0; j < half; ++j) {
        const float dn = m[j] > 0.0f ? dm[j] : 0.0f;  // through the ReLU
        dgamma[j] += dn * hat[j];
        dbeta[j] += dn;
        dm[j] = dn * gamma[j];
        mean_g += dm[j];
        mean_gh += dm[j] * hat[j];
      }
      mean_g /= half;
      mean_gh /= half;
      const float inv_std = inv_std_[r];
      for (int64_t j = 0; j < half; ++j) dm[j] = inv_std * (dm[j] - mean_g - hat[j] * mean_gh);
    }
  } else {
    for (int64_t i = 0; i < n * half; ++i) dh_[i] = h_[i] > 0.0f ? dh_[i] : 0.0f;
  }
  for (int64_t r = 0; r < n; ++r) {
    const float* gr = g + r * d;
    const float* x0r = x0 + r * d;
    const float* m = mask_.data() + r * half;
    float* dh = dh_.data() + r * half;
    for (int64_t j = 0; j < half; ++j) {
      dh[j] += gr[j] * x0r[j] + gr[half + j] * x0r[half + j] * m[j];
    }
  }
  if (batch_norm_) BatchNormBackward();
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, half, d, n, 1.0f, dh_.data(), half, x, d,
              1.0f, arena_->grad(w_), d);

  // dx = g (the skip) + dh W, and dx0 = g * c; one write when x0 is x.
  const bool same = x0_ == x_;
  if (x_->needs_grad()) {
    float* dx = x_->grad();
    const float* c = c_.data();
    StoreGrad(x_->BeginGradWrite(), dx, n * d,
              [&](int64_t i) { return same ? g[i] * (1.0f + c[i]) : g[i]; });
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, d, half, 1.0f, dh_.data(), half,
                arena_->value(w_), d, 1.0f, dx, d);
  }
  if (!same && x0_->needs_grad()) {
    const float* c = c_.data();
    StoreGrad(x0_->BeginGradWrite(), x0_->grad(), n * d, [&](int64_t i) { return g[i] * c[i]; });
  }
}

int64_t SelfMaskCross::FlopsPerSample() const {
  return out_->per_sample() ? 2 * heads_ * d_ * (d_ / 2) : 0;
}

}  // namespace ctrps::nn
