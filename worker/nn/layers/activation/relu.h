// ReLU: out = max(in, 0). The gradient at 0 is 0, as in PyTorch.
#ifndef CTRPS_WORKER_NN_LAYERS_ACTIVATION_RELU_H_
#define CTRPS_WORKER_NN_LAYERS_ACTIVATION_RELU_H_

#include "worker/nn/graph.h"

namespace ctrps::nn {

class Relu : public Layer {
 public:
  Relu(Graph* graph, Node* in);
  Node* out() const { return out_; }
  void Forward(const ForwardContext& ctx) override;
  void Backward() override;

 private:
  Node* in_;
  Node* out_;
};

}  // namespace ctrps::nn

#endif  // CTRPS_WORKER_NN_LAYERS_ACTIVATION_RELU_H_
