#include "worker/nn/layers/basic/linear.h"

#include <cblas.h>

namespace ctrps::nn {

Linear::Linear(Graph* graph, Node* in, int64_t out_width, bool use_bias, const std::string& name)
    : arena_(graph->arena()), in_(in), use_bias_(use_bias) {
  out_ = graph->NewNode(out_width, in->per_sample());
  weight_ = arena_->AddParameter(name + ".weight", out_width * in->width(),
                                 Initializer::XavierUniform(in->width(), out_width));
  if (use_bias_) bias_ = arena_->AddParameter(name + ".bias", out_width, Initializer::Zeros());
}

void Linear::Forward(const ForwardContext&) {
  const int64_t m = in_->rows(), k = in_->width(), n = out_->width();
  float* y = out_->mutable_value();
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, in_->value(), k,
              arena_->value(weight_), k, 0.0f, y, n);
  if (use_bias_) {
    const float* b = arena_->value(bias_);
    for (int64_t r = 0; r < m; ++r) {
      float* row = y + r * n;
      for (int64_t c = 0; c < n; ++c) row[c] += b[c];
    }
  }
}

void Linear::Backward() {
  const int64_t m = in_->rows(), k = in_->width(), n = out_->width();
  const float* dy = out_->grad();
  // dW += dy^T x
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, k, m, 1.0f, dy, n, in_->value(), k, 1.0f,
              arena_->grad(weight_), k);
  if (use_bias_) {
    float* db = arena_->grad(bias_);
    for (int64_t r = 0; r < m; ++r) {
      const float* row = dy + r * n;
      for (int64_t c = 0; c < n; ++c) db[c] += row[c];
    }
  }
  if (in_->needs_grad()) {
    const float beta = in_->BeginGradWrite() ? 1.0f : 0.0f;
    // dx = dy W
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, k, n, 1.0f, dy, n,
                arena_->value(weight_), k, beta, in_->grad(), k);
  }
}

int64_t Linear::FlopsPerSample() const {
  return in_->per_sample() ? 2 * in_->width() * out_->width() : 0;
}

}  // namespace ctrps::nn
