// HeadSplit: FCN's multi-head feature embedding (the authors'
// MultiHeadFeatureEmbedding), a fixed permutation of each row.
//
// in = [batch, F * D] (field-major), D a multiple of 2 * num_heads. Each
// field's vector splits into H heads of d = D / H, and each head's piece
// into halves of d / 2; head h's row lists the first halves of all fields,
// then the second halves:
//   out[b, h, f * d/2 + k]         = in[b, f * D + h * d + k]
//   out[b, h, (F + f) * d/2 + k]   = in[b, f * D + h * d + d/2 + k]   (k < d/2)
// out = [batch, H * F * d], head-major: H rows of F * d per sample.
#ifndef CTRPS_WORKER_NN_LAYERS_BASIC_HEAD_SPLIT_H_
#define CTRPS_WORKER_NN_LAYERS_BASIC_HEAD_SPLIT_H_

#include <cstdint>

#include "worker/nn/graph.h"

namespace ctrps::nn {

class HeadSplit : public Layer {
 public:
  // in->width() == num_fields * D with D % (2 * num_heads) == 0, D > 0.
  HeadSplit(Graph* graph, Node* in, int num_fields, int num_heads);
  Node* out() const { return out_; }
  void Forward(const ForwardContext& ctx) override;
  void Backward() override;

 private:
  // Calls copy(in_offset, out_offset, length) for each contiguous run of a row.
  template <typename F>
  void ForEachRun(F copy) const;

  Node* in_;
  Node* out_;
  int64_t fields_;
  int64_t heads_;
  int64_t dim_;  // D
};

}  // namespace ctrps::nn

#endif  // CTRPS_WORKER_NN_LAYERS_BASIC_HEAD_SPLIT_H_
