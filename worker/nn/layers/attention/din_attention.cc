#include "worker/nn/layers/attention/din_attention.h"

#include <algorithm>
#include <cassert>
#include <utility>

namespace ctrps::nn {

DinAttention::DinAttention(Graph* graph, Node* seq, int max_len, Node* query, int64_t query_offset,
                           MlpOptions mlp)
    : SequencePooling(graph, seq, max_len, static_cast<int>(seq->width() / max_len)),
      query_(query),
      query_offset_(query_offset) {
  assert(query->per_sample() && query_offset >= 0 && query_offset + dim_ <= query->width());
  att_graph_ = std::make_unique<Graph>(graph->arena(), graph->NextLayerSeed());
  att_in_node_ = att_graph_->AddInput(4 * static_cast<int64_t>(dim_), /*needs_grad=*/true);
  mlp.output_dim = 1;
  mlp.output_activation = Activation::kNone;
  att_out_ = AddMlp(att_graph_.get(), att_in_node_, mlp);
}

void DinAttention::Forward(const ForwardContext& ctx) {
  const int64_t batch = seq_->rows();
  const int64_t d = dim_;
  rows_ = PackOffsets();
  float* out = out_->mutable_value();
  if (rows_ == 0) {
    std::fill(out, out + batch * d, 0.0f);
    return;
  }
  att_in_.resize(rows_ * 4 * d);
  for (int64_t b = 0; b < batch; ++b) {
    const float* t = query_->value() + b * query_->width() + query_offset_;
    const int n = Length(b);
    for (int l = 0; l < n; ++l) {
      const float* h = Row(b, l);
      float* x = att_in_.data() + (offsets_[b] + l) * 4 * d;
      for (int64_t j = 0; j < d; ++j) {
        x[j] = h[j];
        x[d + j] = t[j];
        x[2 * d + j] = h[j] - t[j];
        x[3 * d + j] = h[j] * t[j];
      }
    }
  }
  att_graph_->BindInput(att_in_node_, att_in_.data(), nullptr);
  att_graph_->Forward(rows_, ctx);
  const float* w = att_out_->value();
  for (int64_t b = 0; b < batch; ++b) {
    float* y = out + b * d;
    std::fill(y, y + d, 0.0f);
    const int n = Length(b);
    for (int l = 0; l < n; ++l) {
      const float a = w[offsets_[b] + l];
      const float* h = Row(b, l);
      for (int64_t j = 0; j < d; ++j) y[j] += a * h[j];
    }
  }
}

void DinAttention::Backward() {
  const int64_t batch = seq_->rows();
  const int64_t d = dim_;
  const float* dy = out_->grad();
  if (rows_ > 0) {
    // d(loss)/d(a_l) = <dy_b, h_l>, then back through the attention MLP.
    d_weights_.resize(rows_);
    for (int64_t b = 0; b < batch; ++b) {
      const int n = Length(b);
      for (int l = 0; l < n; ++l) {
        const float* h = Row(b, l);
        float s = 0.0f;
        for (int64_t j = 0; j < d; ++j) s += dy[b * d + j] * h[j];
        d_weights_[offsets_[b] + l] = s;
      }
    }
    d_att_in_.resize(rows_ * 4 * d);
    att_graph_->BindInput(att_in_node_, att_in_.data(), d_att_in_.data());
    att_graph_->Backward(att_out_, d_weights_.data());
  }
  const float* w = att_out_->value();
  // The attention input [h, t, h - t, h * t] splits its gradient g = [g0, g1,
  // g2, g3] into dh = g0 + g2 + t * g3 and dt = g1 - g2 + h * g3.
  if (seq_->needs_grad()) {
    const bool accumulate = seq_->BeginGradWrite();
    for (int64_t b = 0; b < batch; ++b) {
      const float* t = query_->value() + b * query_->width() + query_offset_;
      const float* g = dy + b * d;
      const int n = Length(b);
      float* dseq = seq_->grad() + b * seq_->width();
      for (int l = 0; l < max_len_; ++l) {
        float* dh = dseq + l * d;
        if (l >= n) {
          if (!accumulate) std::fill(dh, dh + d, 0.0f);
          continue;
        }
        const int64_t r = offsets_[b] + l;
        const float a = w[r];
        const float* x = d_att_in_.data() + r * 4 * d;
        StoreGrad(accumulate, dh, d,
                  [&](int64_t j) { return a * g[j] + x[j] + x[2 * d + j] + t[j] * x[3 * d + j]; });
      }
    }
  }
  if (query_->needs_grad()) {
    if (!query_->BeginGradWrite()) std::fill(query_->grad(), query_->grad() + query_->size(), 0.0f);
    for (int64_t b = 0; b < batch; ++b) {
      float* dt = query_->grad() + b * query_->width() + query_offset_;
      const int n = Length(b);
      for (int l = 0; l < n; ++l) {
        const float* h = Row(b, l);
        const float* x = d_att_in_.data() + (offsets_[b] + l) * 4 * d;
        for (int64_t j = 0; j < d; ++j) dt[j] += x[d + j] - x[2 * d + j] + h[j] * x[3 * d + j];
      }
    }
  }
}

int64_t DinAttention::FlopsPerSample() const {
  return static_cast<int64_t>(max_len_) * (att_graph_->FlopsPerSample() + 2 * dim_);
}

}  // namespace ctrps::nn
