// FeatureGate: out = in * gate elementwise, where gate has the input's width
// and either one row per sample or a single row shared by the batch
// (FinalMLP's feature selection with a learned context).
#ifndef CTRPS_WORKER_NN_LAYERS_BLOCKS_FEATURE_GATE_H_
#define CTRPS_WORKER_NN_LAYERS_BLOCKS_FEATURE_GATE_H_

#include "worker/nn/graph.h"

namespace ctrps::nn {

class FeatureGate : public Layer {
 public:
  FeatureGate(Graph* graph, Node* in, Node* gate);
  Node* out() const { return out_; }
  void Forward(const ForwardContext& ctx) override;
  void Backward() override;

 private:
  Node* in_;
  Node* gate_;
  Node* out_;
};

}  // namespace ctrps::nn

#endif  // CTRPS_WORKER_NN_LAYERS_BLOCKS_FEATURE_GATE_H_
