// Dice, DIN's data-adaptive activation (Zhou et al., KDD 2018), as FuxiCTR:
//   p = sigmoid(xhat),  out = p * x + alpha * (1 - p) * x
// where xhat standardises each column (BatchNorm without affine, eps 1e-9,
// momentum 0.01): batch statistics in training, running ones in evaluation.
// alpha is one learned value per column, starting at 0.
#ifndef CTRPS_WORKER_NN_LAYERS_ACTIVATION_DICE_H_
#define CTRPS_WORKER_NN_LAYERS_ACTIVATION_DICE_H_

#include <string>

#include "worker/nn/graph.h"
#include "worker/nn/layers/normalization/normalizer.h"

namespace ctrps::nn {

class Dice : public Layer {
 public:
  Dice(Graph* graph, Node* in, const std::string& name = "dice", float eps = 1e-9f,
       float momentum = 0.01f);
  Node* out() const { return out_; }
  ParamSlot alpha() const { return alpha_; }
  const Normalizer& normalizer() const { return norm_; }
  void Forward(const ForwardContext& ctx) override;
  void Backward() override;

 private:
  ParameterArena* arena_;
  Node* in_;
  Node* out_;
  ParamSlot alpha_;
  Normalizer norm_;
  AlignedVector xhat_;
  AlignedVector p_;
  AlignedVector dxhat_;
};

}  // namespace ctrps::nn

#endif  // CTRPS_WORKER_NN_LAYERS_ACTIVATION_DICE_H_
