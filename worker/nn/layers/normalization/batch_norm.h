// BatchNorm over the columns of a [batch, width] node (torch.nn.BatchNorm1d,
// eps 1e-5, momentum 0.1): out = gamma * xhat + beta, xhat standardised with
// the batch's statistics in training and the running ones in evaluation (see
// Normalizer). gamma starts at 1, beta at 0; the running mean and variance
// are buffers of the arena. With `channels` > 0 the node holds, per sample,
// rows of `channels` values back to back (a channels-last feature map) and
// each channel is standardised over all of them (torch.nn.BatchNorm2d).
#ifndef CTRPS_WORKER_NN_LAYERS_NORMALIZATION_BATCH_NORM_H_
#define CTRPS_WORKER_NN_LAYERS_NORMALIZATION_BATCH_NORM_H_

#include <cstdint>
#include <string>

#include "worker/nn/graph.h"
#include "worker/nn/layers/normalization/normalizer.h"

namespace ctrps::nn {

class BatchNorm : public Layer {
 public:
  BatchNorm(Graph* graph, Node* in, const std::string& name = "batch_norm", float eps = 1e-5f,
            float momentum = 0.1f, int64_t channels = 0);
  Node* out() const { return out_; }
  const Normalizer& normalizer() const { return norm_; }
  void Forward(const ForwardContext& ctx) override;
  void Backward() override;

 private:
  ParameterArena* arena_;
  Node* in_;
  int64_t channels_;  // values normalised together per row; divides in's width
  Node* out_;
  ParamSlot gamma_;
  ParamSlot beta_;
  Normalizer norm_;
  AlignedVector xhat_;
  AlignedVector dxhat_;
};

}  // namespace ctrps::nn

#endif  // CTRPS_WORKER_NN_LAYERS_NORMALIZATION_BATCH_NORM_H_
