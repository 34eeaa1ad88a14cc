// Tanh: out = tanh(in) (FGCNN's convolution and recombination layers).
#ifndef CTRPS_WORKER_NN_LAYERS_ACTIVATION_TANH_H_
#define CTRPS_WORKER_NN_LAYERS_ACTIVATION_TANH_H_

#include "worker/nn/graph.h"

namespace ctrps::nn {

class Tanh : public Layer {
 public:
  Tanh(Graph* graph, Node* in);
  Node* out() const { return out_; }
  void Forward(const ForwardContext& ctx) override;
  void Backward() override;

 private:
  Node* in_;
  Node* out_;
};

}  // namespace ctrps::nn

#endif  // CTRPS_WORKER_NN_LAYERS_ACTIVATION_TANH_H_
