#include "worker/nn/layers/sequence/sequence_pooling.h"

#include <algorithm>
#include <cassert>

namespace ctrps::nn {

SequencePooling::SequencePooling(Graph* graph, Node* seq, int max_len, int dim)
    : seq_(seq), out_(graph->NewNode(dim, /*per_sample=*/true)), max_len_(max_len), dim_(dim) {
  assert(max_len > 0 && dim > 0);
  assert(seq->per_sample() && seq->width() == static_cast<int64_t>(max_len) * dim);
}

int64_t SequencePooling::PackOffsets() {
  assert(lengths_ != nullptr);
  const int64_t batch = seq_->rows();
  offsets_.resize(batch + 1);
  offsets_[0] = 0;
  for (int64_t b = 0; b < batch; ++b) {
    offsets_[b + 1] = offsets_[b] + std::clamp<int32_t>(lengths_[b], 0, max_len_);
  }
  return offsets_[batch];
}

void MeanSequencePooling::Forward(const ForwardContext&) {
  PackOffsets();
  const int64_t batch = seq_->rows();
  for (int64_t b = 0; b < batch; ++b) {
    float* y = out_->mutable_value() + b * dim_;
    std::fill(y, y + dim_, 0.0f);
    const int n = Length(b);
    for (int l = 0; l < n; ++l) {
      const float* h = Row(b, l);
      for (int j = 0; j < dim_; ++j) y[j] += h[j];
    }
    if (n > 0) {
      const float inv = 1.0f / static_cast<float>(n);
      for (int j = 0; j < dim_; ++j) y[j] *= inv;
    }
  }
}

void MeanSequencePooling::Backward() {
  if (!seq_->needs_grad()) return;
  const bool accumulate = seq_->BeginGradWrite();
  const int64_t batch = seq_->rows();
  for (int64_t b = 0; b < batch; ++b) {
    const int n = Length(b);
    const float inv = n > 0 ? 1.0f / static_cast<float>(n) : 0.0f;
    const float* dy = out_->grad() + b * dim_;
    float* dseq = seq_->grad() + b * seq_->width();
    for (int l = 0; l < max_len_; ++l) {
      const float scale = l < n ? inv : 0.0f;
      StoreGrad(accumulate, dseq + static_cast<int64_t>(l) * dim_, dim_,
                [&](int64_t j) { return scale * dy[j]; });
    }
  }
}

}  // namespace ctrps::nn
