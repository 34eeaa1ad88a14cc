#include "worker/nn/layers/interaction/fm_interaction.h"

#include <cassert>

namespace ctrps::nn {

FmInteraction::FmInteraction(Graph* graph, Node* in, int64_t num_fields, int64_t dim)
    : in_(in), out_(graph->NewNode(1, in->per_sample())), num_fields_(num_fields), dim_(dim) {
  assert(in->width() == num_fields * dim);
}

void FmInteraction::Forward(const ForwardContext&) {
  const int64_t rows = in_->rows(), f = num_fields_, d = dim_;
  field_sum_.resize(rows * d);
  for (int64_t r = 0; r < rows; ++r) {
    const float* v = in_->value() + r * f * d;
    float* s = field_sum_.data() + r * d;
    for (int64_t k = 0; k < d; ++k) s[k] = 0.0f;
    float sum_sq = 0.0f;
    for (int64_t i = 0; i < f; ++i) {
      const float* vi = v + i * d;
      for (int64_t k = 0; k < d; ++k) {
        s[k] += vi[k];
        sum_sq += vi[k] * vi[k];
      }
    }
    float sq_sum = 0.0f;
    for (int64_t k = 0; k < d; ++k) sq_sum += s[k] * s[k];
    out_->mutable_value()[r] = 0.5f * (sq_sum - sum_sq);
  }
}

void FmInteraction::Backward() {
  if (!in_->needs_grad()) return;
  const int64_t rows = in_->rows(), f = num_fields_, d = dim_;
  const bool accumulate = in_->BeginGradWrite();
  // d(out)/d(v_fd) = sum_d' - v_fd.
  for (int64_t r = 0; r < rows; ++r) {
    const float g = out_->grad()[r];
    const float* s = field_sum_.data() + r * d;
    for (int64_t i = 0; i < f; ++i) {
      const float* vi = in_->value() + (r * f + i) * d;
      StoreGrad(accumulate, in_->grad() + (r * f + i) * d, d,
                [&](int64_t k) { return g * (s[k] - vi[k]); });
    }
  }
}

int64_t FmInteraction::FlopsPerSample() const {
  return in_->per_sample() ? 2 * num_fields_ * dim_ + 2 * dim_ : 0;
}

}  // namespace ctrps::nn
