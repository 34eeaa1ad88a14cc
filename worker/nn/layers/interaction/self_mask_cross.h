// SelfMaskCross: one cross layer of FCN (DCNv3, "FCN: Fusing Exponential and
// Linear Cross Network"), as the authors' ExponentialCrossNetwork and
// LinearCrossNetwork compute it, over each of `num_heads` heads of a row.
//
// in x = [batch, H * d] (H heads of d, d even), and x0 of the same shape
// (the network's input, for the linear network; x itself for the
// exponential one). For each head's vector (rows of d), with W [d/2, d]:
//   h    = W x                                           [d/2]
//   h    = batch_norm(h)  with batch_norm: per head, over the batch's rows
//                         and the d/2 values (BatchNorm1d(num_heads) on
//                         [batch, H, d/2]; eps 1e-5, momentum 0.1, running
//                         statistics in evaluation; scale 1, shift 0 at start)
//   mask = relu(layer_norm(h))  (relu(h) without layer norm)
//   c    = [h, h * mask] + b                             [d]
//   out  = x0 * c + x
// W is shared by the heads (Xavier-uniform, no bias); b [d] starts U(0, 1),
// as the authors initialise it; layer norm (over d/2, eps 1e-5) starts at
// gamma 1, beta 0. The projection is one cblas_sgemm over batch x H rows.
#ifndef CTRPS_WORKER_NN_LAYERS_INTERACTION_SELF_MASK_CROSS_H_
#define CTRPS_WORKER_NN_LAYERS_INTERACTION_SELF_MASK_CROSS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "worker/nn/graph.h"
#include "worker/nn/parameter_arena.h"
#include "worker/nn/tensor.h"

namespace ctrps::nn {

class SelfMaskCross : public Layer {
 public:
  // x0 and x have the same width, num_heads * d with d even; x0 == x for the
  // exponential network.
  SelfMaskCross(Graph* graph, Node* x0, Node* x, int num_heads, bool layer_norm,
                const std::string& name = "cross", bool batch_norm = false);

  Node* out() const { return out_; }  // [rows, H * d]
  void Forward(const ForwardContext& ctx) override;
  void Backward() override;
  int64_t FlopsPerSample() const override;

 private:
  // Batch norm of h_ in place (keeping bn_hat_), and its backward on dh_.
  void BatchNormForward(bool training);
  void BatchNormBackward();

  ParameterArena* arena_;
  Node* x0_;
  Node* x_;
  Node* out_;
  int64_t heads_;
  int64_t d_;
  bool layer_norm_;
  bool batch_norm_;
  ParamSlot w_, b_, gamma_, beta_;  // gamma_, beta_ empty without layer norm
  // Batch norm's [H] scale, shift, running mean and variance (buffers).
  ParamSlot bn_gamma_, bn_beta_, bn_mean_, bn_var_;
  bool bn_training_ = false;       // the last Forward used batch statistics
  AlignedVector bn_hat_;           // [rows * H, d/2]: standardised W x
  std::vector<float> bn_inv_std_;  // [H]

  AlignedVector h_;        // [rows * H, d/2]: W x, batch-normalised with batch_norm
  AlignedVector xhat_;     // [rows * H, d/2]: normalised h, with layer norm
  AlignedVector inv_std_;  // [rows * H]
  AlignedVector mask_;     // [rows * H, d/2]
  AlignedVector c_;        // [rows * H, d]
  AlignedVector dh_;       // [rows * H, d/2], Backward scratch
};

}  // namespace ctrps::nn

#endif  // CTRPS_WORKER_NN_LAYERS_INTERACTION_SELF_MASK_CROSS_H_
