// DIN's local activation unit and attention pooling (Zhou et al., KDD 2018),
// as FuxiCTR's DIN_Attention with use_softmax = False (its default and the
// paper's choice): for each valid history row h_l of a sample and the
// sample's target (query) t,
//
//   a_l = MLP([h_l, t, h_l - t, h_l * t])   hidden layers as `mlp` (Linear ->
//                                           activation), then Linear -> 1 with
//                                           no output activation
//   out = sum_{l < length} a_l h_l          (weights not normalised)
//
// FuxiCTR orders the attention input [t, h, t - h, t * h]; that is the same
// family of functions with the first Linear's columns permuted and negated.
//
// The MLP runs on the valid rows of the whole batch packed together (one
// cblas_sgemm per Linear over sum_b length_b rows), so padding costs nothing
// and, with Dice, the batch statistics are those of real behaviour rows
// (FuxiCTR computes them over the padded B * L rows). Its parameters live in
// the outer graph's arena under `mlp.name`.
//
// Gradients: the sequence rows, the query (added to the query node's gradient
// at its columns, per the graph's protocol) and the MLP's parameters. An
// empty batch history (every length 0) outputs zeros and leaves the MLP
// untouched, including Dice's running statistics.
#ifndef CTRPS_WORKER_NN_LAYERS_ATTENTION_DIN_ATTENTION_H_
#define CTRPS_WORKER_NN_LAYERS_ATTENTION_DIN_ATTENTION_H_

#include <cstdint>
#include <memory>

#include "worker/nn/layers/blocks/mlp_block.h"
#include "worker/nn/layers/sequence/sequence_pooling.h"

namespace ctrps::nn {

class DinAttention final : public SequencePooling {
 public:
  // The query of sample b is columns [query_offset, query_offset + dim) of
  // row b of `query` (a per-sample node, e.g. the field embeddings with
  // query_offset = target_field * dim). `mlp.hidden_units` may be empty
  // (a_l is then one Linear); mlp.output_dim is ignored (always 1).
  DinAttention(Graph* graph, Node* seq, int max_len, Node* query, int64_t query_offset,
               MlpOptions mlp);

  void Forward(const ForwardContext& ctx) override;
  void Backward() override;
  // Attention MLP and weighted sum over max_len rows (full histories).
  int64_t FlopsPerSample() const override;

  // The attention weights a of the last Forward(), packed by sample (sample
  // b's rows first, as offsets of the lengths); for tests.
  const float* weights() const { return att_out_->value(); }

 private:
  Node* query_;
  int64_t query_offset_;
  std::unique_ptr<Graph> att_graph_;  // the attention MLP over packed rows
  Node* att_in_node_ = nullptr;       // [N, 4 * dim]
  Node* att_out_ = nullptr;           // [N, 1]
  int64_t rows_ = 0;                  // N of the last Forward
  AlignedVector att_in_;
  AlignedVector d_att_in_;
  AlignedVector d_weights_;
};

}  // namespace ctrps::nn

#endif  // CTRPS_WORKER_NN_LAYERS_ATTENTION_DIN_ATTENTION_H_
