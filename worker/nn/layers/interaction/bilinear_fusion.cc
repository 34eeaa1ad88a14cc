#include "worker/nn/layers/interaction/bilinear_fusion.h"

#include <cblas.h>

#include <cassert>

namespace ctrps::nn {

BilinearFusion::BilinearFusion(Graph* graph, Node* x, Node* y, int num_heads,
                               const std::string& name)
    : arena_(graph->arena()),
      x_(x),
      y_(y),
      out_(graph->NewNode(1, x->per_sample())),
      num_heads_(num_heads) {
  assert(num_heads >= 1 && x->width() % num_heads == 0 && y->width() % num_heads == 0);
  assert(x->per_sample() == y->per_sample());
  const int64_t dx = x->width(), dy = y->width();
  const int64_t hx = dx / num_heads, hy = dy / num_heads;
  w_x_ = arena_->AddParameter(name + ".w_x", dx, Initializer::XavierUniform(dx, 1));
  w_y_ = arena_->AddParameter(name + ".w_y", dy, Initializer::XavierUniform(dy, 1));
  bias_ = arena_->AddParameter(name + ".bias", 1, Initializer::Zeros());
  w_xy_ = arena_->AddParameter(name + ".w_xy", num_heads * hx * hy,
                               Initializer::XavierUniform(1, num_heads * hx * hy));
}

void BilinearFusion::Forward(const ForwardContext&) {
  const int64_t rows = x_->rows(), dx = x_->width(), dy = y_->width();
  const int64_t hx = dx / num_heads_, hy = dy / num_heads_;
  t_.resize(rows * dy);
  const float* x = x_->value();
  const float* y = y_->value();
  const float* w_xy = arena_->value(w_xy_);
  for (int h = 0; h < num_heads_; ++h) {
    // T_h = X_h W_h, [rows, hx] x [hx, hy], written into T's columns of head h.
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, hy, hx, 1.0f, x + h * hx, dx,
                w_xy + h * hx * hy, hy, 0.0f, t_.data() + h * hy, dy);
  }
  float* out = out_->mutable_value();
  // out = b + X w_x + Y w_y + rowsum(T * Y)
  const float bias = arena_->value(bias_)[0];
  for (int64_t r = 0; r < rows; ++r) out[r] = bias;
  cblas_sgemv(CblasRowMajor, CblasNoTrans, rows, dx, 1.0f, x, dx, arena_->value(w_x_), 1, 1.0f, out,
              1);
  cblas_sgemv(CblasRowMajor, CblasNoTrans, rows, dy, 1.0f, y, dy, arena_->value(w_y_), 1, 1.0f, out,
              1);
  for (int64_t r = 0; r < rows; ++r) {
    const float* tr = t_.data() + r * dy;
    const float* yr = y + r * dy;
    float s = 0.0f;
    for (int64_t j = 0; j < dy; ++j) s += tr[j] * yr[j];
    out[r] += s;
  }
}

void BilinearFusion::Backward() {
  const int64_t rows = x_->rows(), dx = x_->width(), dy = y_->width();
  const int64_t hx = dx / num_heads_, hy = dy / num_heads_;
  const float* x = x_->value();
  const float* y = y_->value();
  const float* g = out_->grad();
  const float* w_x = arena_->value(w_x_);
  const float* w_y = arena_->value(w_y_);
  const float* w_xy = arena_->value(w_xy_);
  float db = 0.0f;
  for (int64_t r = 0; r < rows; ++r) db += g[r];
  arena_->grad(bias_)[0] += db;
  cblas_sgemv(CblasRowMajor, CblasTrans, rows, dx, 1.0f, x, dx, g, 1, 1.0f, arena_->grad(w_x_), 1);
  cblas_sgemv(CblasRowMajor, CblasTrans, rows, dy, 1.0f, y, dy, g, 1, 1.0f, arena_->grad(w_y_), 1);
  // dT = g * Y (row-scaled); dY = g * (w_y + T).
  dt_.resize(rows * dy);
  for (int64_t r = 0; r < rows; ++r) {
    const float* yr = y + r * dy;
    float* dtr = dt_.data() + r * dy;
    for (int64_t j = 0; j < dy; ++j) dtr[j] = g[r] * yr[j];
  }
  if (y_->needs_grad()) {
    const bool accumulate = y_->BeginGradWrite();
    for (int64_t r = 0; r < rows; ++r) {
      const float* tr = t_.data() + r * dy;
      const float gr = g[r];
      StoreGrad(accumulate, y_->grad() + r * dy, dy,
                [&](int64_t j) { return gr * (w_y[j] + tr[j]); });
    }
  }
  float* dw_xy = arena_->grad(w_xy_);
  for (int h = 0; h < num_heads_; ++h) {
    // dW_h += X_h^T dT_h
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, hx, hy, rows, 1.0f, x + h * hx, dx,
                dt_.data() + h * hy, dy, 1.0f, dw_xy + h * hx * hy, hy);
  }
  if (!x_->needs_grad()) return;
  // dX = g * w_x + dT_h W_h^T per head.
  const bool accumulate = x_->BeginGradWrite();
  for (int64_t r = 0; r < rows; ++r) {
    const float gr = g[r];
    StoreGrad(accumulate, x_->grad() + r * dx, dx, [&](int64_t j) { return gr * w_x[j]; });
  }
  for (int h = 0; h < num_heads_; ++h) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, hx, hy, 1.0f, dt_.data() + h * hy,
                dy, w_xy + h * hx * hy, hy, 1.0f, x_->grad() + h * hx, dx);
  }
}

int64_t BilinearFusion::FlopsPerSample() const {
  if (!x_->per_sample()) return 0;
  const int64_t dx = x_->width(), dy = y_->width();
  return 2 * (dx + dy) + 2 * dx * dy / num_heads_ + 2 * dy;
}

}  // namespace ctrps::nn
