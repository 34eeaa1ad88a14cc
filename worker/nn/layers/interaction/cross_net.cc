#include "worker/nn/layers/interaction/cross_net.h"

#include <cblas.h>

#include <algorithm>
#include <cstring>

namespace ctrps::nn {

CrossNet::CrossNet(Graph* graph, Node* in, int num_layers, const std::string& name)
    : arena_(graph->arena()),
      in_(in),
      out_(graph->NewNode(in->width(), in->per_sample())),
      num_layers_(num_layers) {
  const int64_t d = in->width();
  for (int l = 0; l < num_layers; ++l) {
    const std::string prefix = name + "." + std::to_string(l);
    weights_.push_back(
        arena_->AddParameter(prefix + ".weight", d, Initializer::XavierUniform(d, 1)));
    biases_.push_back(arena_->AddParameter(prefix + ".bias", d, Initializer::Zeros()));
  }
}

const float* CrossNet::x(int l) const {
  if (l == 0) return in_->value();
  if (l == num_layers_) return out_->value();
  return hidden_.data() + (l - 1) * in_->size();
}

float* CrossNet::mutable_x(int l) {
  if (l == num_layers_) return out_->mutable_value();
  return hidden_.data() + (l - 1) * in_->size();
}

void CrossNet::Forward(const ForwardContext&) {
  const int64_t rows = in_->rows(), d = in_->width();
  if (num_layers_ == 0) {
    std::memcpy(out_->mutable_value(), in_->value(), sizeof(float) * in_->size());
    return;
  }
  hidden_.resize((num_layers_ - 1) * rows * d);
  dots_.resize(num_layers_ * rows);
  const float* x0 = in_->value();
  for (int l = 0; l < num_layers_; ++l) {
    const float* xl = x(l);
    float* next = mutable_x(l + 1);
    float* dot = dots_.data() + l * rows;
    const float* b = arena_->value(biases_[l]);
    cblas_sgemv(CblasRowMajor, CblasNoTrans, rows, d, 1.0f, xl, d, arena_->value(weights_[l]), 1,
                0.0f, dot, 1);
    for (int64_t r = 0; r < rows; ++r) {
      const float s = dot[r];
      const float* x0r = x0 + r * d;
      const float* xlr = xl + r * d;
      float* y = next + r * d;
      for (int64_t j = 0; j < d; ++j) y[j] = x0r[j] * s + b[j] + xlr[j];
    }
  }
}

void CrossNet::Backward() {
  const int64_t rows = in_->rows(), d = in_->width(), n = rows * d;
  if (num_layers_ == 0) {
    if (!in_->needs_grad()) return;
    const float* dy = out_->grad();
    StoreGrad(in_->BeginGradWrite(), in_->grad(), n, [&](int64_t i) { return dy[i]; });
    return;
  }
  dx_.assign(out_->grad(), out_->grad() + n);
  dx0_.assign(n, 0.0f);
  ddot_.resize(rows);
  const float* x0 = in_->value();
  float* g = dx_.data();
  for (int l = num_layers_ - 1; l >= 0; --l) {
    const float* xl = x(l);
    const float* w = arena_->value(weights_[l]);
    const float* dot = dots_.data() + l * rows;
    float* db = arena_->grad(biases_[l]);
    for (int64_t r = 0; r < rows; ++r) {
      const float* gr = g + r * d;
      const float* x0r = x0 + r * d;
      float* dx0r = dx0_.data() + r * d;
      float ds = 0.0f;
      for (int64_t j = 0; j < d; ++j) {
        ds += gr[j] * x0r[j];
        db[j] += gr[j];
        dx0r[j] += gr[j] * dot[r];
      }
      ddot_[r] = ds;
    }
    // dw_l += x_l^T ddot
    cblas_sgemv(CblasRowMajor, CblasTrans, rows, d, 1.0f, xl, d, ddot_.data(), 1, 1.0f,
                arena_->grad(weights_[l]), 1);
    // d/d(x_l) = g + ddot * w_l
    for (int64_t r = 0; r < rows; ++r) {
      const float s = ddot_[r];
      float* gr = g + r * d;
      for (int64_t j = 0; j < d; ++j) gr[j] += s * w[j];
    }
  }
  if (!in_->needs_grad()) return;
  const float* dx0 = dx0_.data();
  StoreGrad(in_->BeginGradWrite(), in_->grad(), n, [&](int64_t i) { return g[i] + dx0[i]; });
}

int64_t CrossNet::FlopsPerSample() const {
  return in_->per_sample() ? num_layers_ * 4 * in_->width() : 0;
}

}  // namespace ctrps::nn
