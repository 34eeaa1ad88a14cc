// Sigmoid: out = 1 / (1 + exp(-in)), with a scale: out = scale * sigmoid(in)
// (FinalMLP's gate uses scale 2).
#ifndef CTRPS_WORKER_NN_LAYERS_ACTIVATION_SIGMOID_H_
#define CTRPS_WORKER_NN_LAYERS_ACTIVATION_SIGMOID_H_

#include "worker/nn/graph.h"

namespace ctrps::nn {

class Sigmoid : public Layer {
 public:
  Sigmoid(Graph* graph, Node* in, float scale = 1.0f);
  Node* out() const { return out_; }
  void Forward(const ForwardContext& ctx) override;
  void Backward() override;

 private:
  Node* in_;
  Node* out_;
  float scale_;
};

}  // namespace ctrps::nn

#endif  // CTRPS_WORKER_NN_LAYERS_ACTIVATION_SIGMOID_H_
