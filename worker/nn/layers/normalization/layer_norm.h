// LayerNorm over each row (torch.nn.LayerNorm(width), eps 1e-5):
// out = gamma * (x - mean_row) / sqrt(var_row + eps) + beta, with the biased
// row variance; gamma starts at 1, beta at 0. No running state.
#ifndef CTRPS_WORKER_NN_LAYERS_NORMALIZATION_LAYER_NORM_H_
#define CTRPS_WORKER_NN_LAYERS_NORMALIZATION_LAYER_NORM_H_

#include <string>

#include "worker/nn/graph.h"

namespace ctrps::nn {

class LayerNorm : public Layer {
 public:
  LayerNorm(Graph* graph, Node* in, const std::string& name = "layer_norm", float eps = 1e-5f);
  Node* out() const { return out_; }
  void Forward(const ForwardContext& ctx) override;
  void Backward() override;

 private:
  ParameterArena* arena_;
  Node* in_;
  Node* out_;
  float eps_;
  ParamSlot gamma_;
  ParamSlot beta_;
  AlignedVector xhat_;
  AlignedVector inv_std_;  // per row
};

}  // namespace ctrps::nn

#endif  // CTRPS_WORKER_NN_LAYERS_NORMALIZATION_LAYER_NORM_H_
