#include "worker/nn/layers/interaction/cross_net_v2.h"

#include <cblas.h>

#include <cstring>

namespace ctrps::nn {

CrossNetV2::CrossNetV2(Graph* graph, Node* in, int num_layers, int low_rank,
                       const std::string& name)
    : arena_(graph->arena()),
      in_(in),
      out_(graph->NewNode(in->width(), in->per_sample())),
      num_layers_(num_layers),
      low_rank_(low_rank) {
  const int64_t d = in->width(), r = low_rank;
  for (int l = 0; l < num_layers; ++l) {
    const std::string prefix = name + "." + std::to_string(l);
    if (r == 0) {
      w_.push_back(
          arena_->AddParameter(prefix + ".weight", d * d, Initializer::XavierUniform(d, d)));
    } else {
      w_.push_back(arena_->AddParameter(prefix + ".u", d * r, Initializer::XavierUniform(r, d)));
      v_.push_back(arena_->AddParameter(prefix + ".v", r * d, Initializer::XavierUniform(d, r)));
    }
    b_.push_back(arena_->AddParameter(prefix + ".bias", d, Initializer::Zeros()));
  }
}

const float* CrossNetV2::x(int l) const {
  if (l == 0) return in_->value();
  if (l == num_layers_) return out_->value();
  return hidden_.data() + (l - 1) * in_->size();
}

float* CrossNetV2::mutable_x(int l) {
  if (l == num_layers_) return out_->mutable_value();
  return hidden_.data() + (l - 1) * in_->size();
}

void CrossNetV2::Forward(const ForwardContext&) {
  const int64_t rows = in_->rows(), d = in_->width(), r = low_rank_, n = rows * d;
  if (num_layers_ == 0) {
    std::memcpy(out_->mutable_value(), in_->value(), sizeof(float) * n);
    return;
  }
  hidden_.resize((num_layers_ - 1) * n);
  z_.resize(num_layers_ * n);
  if (r > 0) h_.resize(num_layers_ * rows * r);
  const float* x0 = in_->value();
  for (int l = 0; l < num_layers_; ++l) {
    const float* xl = x(l);
    float* z = z_.data() + l * n;
    if (r == 0) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, d, d, 1.0f, xl, d,
                  arena_->value(w_[l]), d, 0.0f, z, d);
    } else {
      float* h = h_.data() + l * rows * r;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, r, d, 1.0f, xl, d,
                  arena_->value(v_[l]), d, 0.0f, h, r);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, d, r, 1.0f, h, r,
                  arena_->value(w_[l]), r, 0.0f, z, d);
    }
    const float* b = arena_->value(b_[l]);
    float* next = mutable_x(l + 1);
    for (int64_t i = 0; i < rows; ++i) {
      float* zi = z + i * d;
      const float* x0i = x0 + i * d;
      const float* xli = xl + i * d;
      float* y = next + i * d;
      for (int64_t j = 0; j < d; ++j) {
        zi[j] += b[j];
        y[j] = x0i[j] * zi[j] + xli[j];
      }
    }
  }
}

void CrossNetV2::Backward() {
  const int64_t rows = in_->rows(), d = in_->width(), r = low_rank_, n = rows * d;
  if (num_layers_ == 0) {
    if (!in_->needs_grad()) return;
    const float* dy = out_->grad();
    StoreGrad(in_->BeginGradWrite(), in_->grad(), n, [&](int64_t i) { return dy[i]; });
    return;
  }
  dx_.assign(out_->grad(), out_->grad() + n);
  dx0_.assign(n, 0.0f);
  dz_.resize(n);
  if (r > 0) dh_.resize(rows * r);
  const float* x0 = in_->value();
  float* g = dx_.data();
  float* dz = dz_.data();
  for (int l = num_layers_ - 1; l >= 0; --l) {
    const float* xl = x(l);
    const float* z = z_.data() + l * n;
    float* db = arena_->grad(b_[l]);
    for (int64_t i = 0; i < rows; ++i) {
      const float* gi = g + i * d;
      const float* x0i = x0 + i * d;
      const float* zi = z + i * d;
      float* dzi = dz + i * d;
      float* dx0i = dx0_.data() + i * d;
      for (int64_t j = 0; j < d; ++j) {
        dzi[j] = gi[j] * x0i[j];
        dx0i[j] += gi[j] * zi[j];
        db[j] += dzi[j];
      }
    }
    if (r == 0) {
      const float* w = arena_->value(w_[l]);
      // dW += dz^T x_l; d/d(x_l) = g + dz W.
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, d, d, rows, 1.0f, dz, d, xl, d, 1.0f,
                  arena_->grad(w_[l]), d);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, d, d, 1.0f, dz, d, w, d, 1.0f, g,
                  d);
    } else {
      const float* u = arena_->value(w_[l]);
      const float* v = arena_->value(v_[l]);
      const float* h = h_.data() + l * rows * r;
      float* dh = dh_.data();
      // dU += dz^T h; dh = dz U; dV += dh^T x_l; d/d(x_l) = g + dh V.
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, d, r, rows, 1.0f, dz, d, h, r, 1.0f,
                  arena_->grad(w_[l]), r);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, r, d, 1.0f, dz, d, u, r, 0.0f,
                  dh, r);
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, r, d, rows, 1.0f, dh, r, xl, d, 1.0f,
                  arena_->grad(v_[l]), d);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, d, r, 1.0f, dh, r, v, d, 1.0f, g,
                  d);
    }
  }
  if (!in_->needs_grad()) return;
  const float* dx0 = dx0_.data();
  StoreGrad(in_->BeginGradWrite(), in_->grad(), n, [&](int64_t i) { return g[i] + dx0[i]; });
}

int64_t CrossNetV2::FlopsPerSample() const {
  if (!in_->per_sample()) return 0;
  const int64_t d = in_->width();
  return num_layers_ * (low_rank_ == 0 ? 2 * d * d : 4 * d * low_rank_);
}

}  // namespace ctrps::nn
