#include "worker/nn/models/ipnn/inner_product.h"

#include <cassert>

namespace ctrps::nn {

InnerProduct::InnerProduct(Graph* graph, Node* in, int64_t num_fields, int64_t dim)
    : in_(in),
      out_(graph->NewNode(num_fields * (num_fields - 1) / 2, in->per_sample())),
      num_fields_(num_fields),
      dim_(dim) {
  assert(num_fields >= 2 && in->width() == num_fields * dim);
}

void InnerProduct::Forward(const ForwardContext&) {
  const int64_t rows = in_->rows(), f = num_fields_, d = dim_, pairs = out_->width();
  for (int64_t r = 0; r < rows; ++r) {
    const float* v = in_->value() + r * f * d;
    float* out = out_->mutable_value() + r * pairs;
    for (int64_t i = 0; i < f; ++i) {
      const float* vi = v + i * d;
      for (int64_t j = i + 1; j < f; ++j) {
        const float* vj = v + j * d;
        float dot = 0.0f;
        for (int64_t k = 0; k < d; ++k) dot += vi[k] * vj[k];
        *out++ = dot;
      }
    }
  }
}

void InnerProduct::Backward() {
  if (!in_->needs_grad()) return;
  const int64_t rows = in_->rows(), f = num_fields_, d = dim_, pairs = out_->width();
  const bool accumulate = in_->BeginGradWrite();
  d_field_.resize(d);
  float* acc = d_field_.data();
  // d(out_p(i, j))/d(v_i) = v_j: field i's gradient sums g_p(i, j) v_j over
  // j != i. The pair (i, j), i < j, is at index i * (2F - i - 1) / 2 + j - i - 1.
  for (int64_t r = 0; r < rows; ++r) {
    const float* v = in_->value() + r * f * d;
    const float* g = out_->grad() + r * pairs;
    for (int64_t i = 0; i < f; ++i) {
      for (int64_t k = 0; k < d; ++k) acc[k] = 0.0f;
      for (int64_t j = 0; j < f; ++j) {
        if (j == i) continue;
        const int64_t lo = j < i ? j : i, hi = j < i ? i : j;
        const float gp = g[lo * (2 * f - lo - 1) / 2 + hi - lo - 1];
        const float* vj = v + j * d;
        for (int64_t k = 0; k < d; ++k) acc[k] += gp * vj[k];
      }
      StoreGrad(accumulate, in_->grad() + (r * f + i) * d, d, [&](int64_t k) { return acc[k]; });
    }
  }
}

int64_t InnerProduct::FlopsPerSample() const {
  return in_->per_sample() ? 2 * out_->width() * dim_ : 0;
}

}  // namespace ctrps::nn
