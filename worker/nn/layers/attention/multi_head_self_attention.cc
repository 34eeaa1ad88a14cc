#include "worker/nn/layers/attention/multi_head_self_attention.h"

#include <cblas.h>

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstring>

#include "common/hash.h"
#include "worker/nn/random.h"

namespace ctrps::nn {

MultiHeadSelfAttention::MultiHeadSelfAttention(Graph* graph, Node* in,
                                               const SelfAttentionOptions& options)
    : arena_(graph->arena()),
      in_(in),
      out_(graph->NewNode(static_cast<int64_t>(options.num_fields) * options.attention_dim,
                          in->per_sample())),
      options_(options),
      d_in_(in->width() / options.num_fields),
      head_dim_(options.attention_dim / options.num_heads),
      scale_(options.use_scale ? 1.0f / std::sqrt(static_cast<float>(head_dim_)) : 1.0f),
      seed_(graph->NextLayerSeed()),
      identity_residual_(options.use_residual && d_in_ == options.attention_dim) {
  assert(options.num_fields >= 1 && in->width() % options.num_fields == 0 && d_in_ >= 1);
  assert(options.num_heads >= 1 && options.attention_dim % options.num_heads == 0);
  assert(options.dropout >= 0.0f && options.dropout < 1.0f);
  const int64_t a = options.attention_dim;
  const std::string& name = options.name;
  w_q_ = arena_->AddParameter(name + ".w_q", a * d_in_, Initializer::XavierUniform(d_in_, a));
  w_k_ = arena_->AddParameter(name + ".w_k", a * d_in_, Initializer::XavierUniform(d_in_, a));
  w_v_ = arena_->AddParameter(name + ".w_v", a * d_in_, Initializer::XavierUniform(d_in_, a));
  if (options.use_residual && !identity_residual_) {
    w_res_ = arena_->AddParameter(name + ".w_res", a * d_in_, Initializer::XavierUniform(d_in_, a));
  }
  if (options.layer_norm) {
    gamma_ = arena_->AddParameter(name + ".layer_norm.weight", a, Initializer::Constant(1.0f));
    beta_ = arena_->AddParameter(name + ".layer_norm.bias", a, Initializer::Zeros());
  }
}

void MultiHeadSelfAttention::Forward(const ForwardContext& ctx) {
  const int64_t rows = in_->rows(), f = options_.num_fields, a = options_.attention_dim;
  const int64_t h = options_.num_heads, dh = head_dim_, n = rows * f;
  const float* x = in_->value();
  q_.resize(n * a);
  k_.resize(n * a);
  v_.resize(n * a);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, a, d_in_, 1.0f, x, d_in_,
              arena_->value(w_q_), d_in_, 0.0f, q_.data(), a);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, a, d_in_, 1.0f, x, d_in_,
              arena_->value(w_k_), d_in_, 0.0f, k_.data(), a);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, a, d_in_, 1.0f, x, d_in_,
              arena_->value(w_v_), d_in_, 0.0f, v_.data(), a);

  // Scores, then a softmax over each row of each sample's [F, F] block.
  const int64_t ff = f * f;
  probs_.resize(rows * h * ff);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < h; ++j) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, f, f, dh, scale_,
                  q_.data() + r * f * a + j * dh, a, k_.data() + r * f * a + j * dh, a, 0.0f,
                  probs_.data() + (r * h + j) * ff, f);
    }
  }
  for (int64_t i = 0; i < rows * h * f; ++i) {
    float* p = probs_.data() + i * f;
    float m = p[0];
    for (int64_t c = 1; c < f; ++c) m = std::max(m, p[c]);
    float sum = 0.0f;
    for (int64_t c = 0; c < f; ++c) {
      p[c] = std::exp(p[c] - m);
      sum += p[c];
    }
    const float inv = 1.0f / sum;
    for (int64_t c = 0; c < f; ++c) p[c] *= inv;
  }

  dropped_ = ctx.training && options_.dropout > 0.0f;
  const float* weights = probs_.data();
  if (dropped_) {
    const int64_t total = rows * h * ff;
    mask_.resize(total);
    weights_.resize(total);
    Rng rng(Mix64(seed_ ^ Mix64(ctx.step)));
    const float keep_scale = 1.0f / (1.0f - options_.dropout);
    const uint32_t threshold =
        static_cast<uint32_t>(static_cast<double>(options_.dropout) * (1u << 24));
    for (int64_t i = 0; i < total; ++i) {
      mask_[i] = static_cast<uint32_t>(rng.Next() & 0xffffff) >= threshold ? keep_scale : 0.0f;
    }
    for (int64_t i = 0; i < total; ++i) weights_[i] = probs_[i] * mask_[i];
    weights = weights_.data();
  }

  // Z = O (+ residual), written into the output buffer, then normalised and
  // rectified in place.
  float* z = out_->mutable_value();
  if (identity_residual_) {
    std::memcpy(z, x, sizeof(float) * n * a);
  } else if (options_.use_residual) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, a, d_in_, 1.0f, x, d_in_,
                arena_->value(w_res_), d_in_, 0.0f, z, a);
  }
  const float beta_o = options_.use_residual ? 1.0f : 0.0f;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < h; ++j) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, f, dh, f, 1.0f,
                  weights + (r * h + j) * ff, f, v_.data() + r * f * a + j * dh, a, beta_o,
                  z + r * f * a + j * dh, a);
    }
  }
  if (options_.layer_norm) {
    xhat_.resize(n * a);
    inv_std_.resize(n);
    const float* gamma = arena_->value(gamma_);
    const float* beta = arena_->value(beta_);
    for (int64_t i = 0; i < n; ++i) {
      float* zi = z + i * a;
      float sum = 0.0f;
      for (int64_t c = 0; c < a; ++c) sum += zi[c];
      const float mean = sum / a;
      float sum2 = 0.0f;
      for (int64_t c = 0; c < a; ++c) sum2 += (zi[c] - mean) * (zi[c] - mean);
      const float inv_std = 1.0f / std::sqrt(sum2 / a + 1e-5f);
      inv_std_[i] = inv_std;
      float* hat = xhat_.data() + i * a;
      for (int64_t c = 0; c < a; ++c) {
        hat[c] = (zi[c] - mean) * inv_std;
        zi[c] = gamma[c] * hat[c] + beta[c];
      }
    }
  }
  for (int64_t i = 0; i < n * a; ++i) z[i] = std::max(z[i], 0.0f);
}

void MultiHeadSelfAttention::Backward() {
  const int64_t rows = in_->rows(), f = options_.num_fields, a = options_.attention_dim;
  const int64_t h = options_.num_heads, dh = head_dim_, n = rows * f, ff = f * f;
  const float* x = in_->value();
  const float* y = out_->value();
  const float* dy = out_->grad();

  // Through the ReLU and the layer norm: dz = d(loss)/dZ.
  dz_.resize(n * a);
  float* dz = dz_.data();
  for (int64_t i = 0; i < n * a; ++i) dz[i] = y[i] > 0.0f ? dy[i] : 0.0f;
  if (options_.layer_norm) {
    const float* gamma = arena_->value(gamma_);
    float* dgamma = arena_->grad(gamma_);
    float* dbeta = arena_->grad(beta_);
    for (int64_t i = 0; i < n; ++i) {
      float* g = dz + i * a;
      const float* hat = xhat_.data() + i * a;
      float mean_g = 0.0f, mean_gh = 0.0f;
      for (int64_t c = 0; c < a; ++c) {
        dgamma[c] += g[c] * hat[c];
        dbeta[c] += g[c];
        g[c] *= gamma[c];
        mean_g += g[c];
        mean_gh += g[c] * hat[c];
      }
      mean_g /= a;
      mean_gh /= a;
      const float inv_std = inv_std_[i];
      for (int64_t c = 0; c < a; ++c) g[c] = inv_std * (g[c] - mean_g - hat[c] * mean_gh);
    }
  }

  // Through the attention: dV_h = W_h^T dO_h, dW_h = dO_h V_h^T, then the
  // dropout mask and the softmax give dS_h, and dQ_h = s dS_h K_h,
  // dK_h = s dS_h^T Q_h.
  const float* weights = dropped_ ? weights_.data() : probs_.data();
  dq_.resize(n * a);
  dk_.resize(n * a);
  dv_.resize(n * a);
  dp_.resize(ff);
  float* dp = dp_.data();
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t base = r * f * a;
    for (int64_t j = 0; j < h; ++j) {
      const int64_t off = base + j * dh, blk = (r * h + j) * ff;
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, f, dh, f, 1.0f, weights + blk, f,
                  dz + off, a, 0.0f, dv_.data() + off, a);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, f, f, dh, 1.0f, dz + off, a,
                  v_.data() + off, a, 0.0f, dp, f);
      const float* p = probs_.data() + blk;
      if (dropped_) {
        const float* m = mask_.data() + blk;
        for (int64_t i = 0; i < ff; ++i) dp[i] *= m[i];
      }
      for (int64_t row = 0; row < f; ++row) {
        float* g = dp + row * f;
        const float* pr = p + row * f;
        float dot = 0.0f;
        for (int64_t c = 0; c < f; ++c) dot += g[c] * pr[c];
        for (int64_t c = 0; c < f; ++c) g[c] = pr[c] * (g[c] - dot);
      }
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, f, dh, f, scale_, dp, f,
                  k_.data() + off, a, 0.0f, dq_.data() + off, a);
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, f, dh, f, scale_, dp, f, q_.data() + off,
                  a, 0.0f, dk_.data() + off, a);
    }
  }

  // Parameter gradients: dW += dY^T X for each projection.
  const struct {
    const float* d;
    ParamSlot w;
  } projections[] = {{dq_.data(), w_q_}, {dk_.data(), w_k_}, {dv_.data(), w_v_}, {dz, w_res_}};
  for (const auto& p : projections) {
    if (p.w.size == 0) continue;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, a, d_in_, n, 1.0f, p.d, a, x, d_in_, 1.0f,
                arena_->grad(p.w), d_in_);
  }
  if (!in_->needs_grad()) return;
  // dX = dQ W_q + dK W_k + dV W_v (+ dZ W_res, or + dZ), into the input's
  // gradient directly (sgemm's beta accumulates).
  bool accumulate = in_->BeginGradWrite();
  float* dx = in_->grad();
  if (identity_residual_) {
    StoreGrad(accumulate, dx, n * a, [&](int64_t i) { return dz[i]; });
    accumulate = true;
  }
  for (const auto& p : projections) {
    if (p.w.size == 0) continue;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, d_in_, a, 1.0f, p.d, a,
                arena_->value(p.w), d_in_, accumulate ? 1.0f : 0.0f, dx, d_in_);
    accumulate = true;
  }
}

int64_t MultiHeadSelfAttention::FlopsPerSample() const {
  if (!in_->per_sample()) return 0;
  const int64_t f = options_.num_fields, a = options_.attention_dim;
  const int64_t projections = w_res_.size > 0 ? 4 : 3;
  return 2 * projections * f * d_in_ * a + 2 * 2 * f * f * a;
}

}  // namespace ctrps::nn
