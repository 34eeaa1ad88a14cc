// PReLU with one slope per column: out = in > 0 ? in : a_c * in.
// Slopes start at 0.1, as FuxiCTR's nn.PReLU(hidden_units, init=0.1).
#ifndef CTRPS_WORKER_NN_LAYERS_ACTIVATION_PRELU_H_
#define CTRPS_WORKER_NN_LAYERS_ACTIVATION_PRELU_H_

#include <string>

#include "worker/nn/graph.h"

namespace ctrps::nn {

class Prelu : public Layer {
 public:
  Prelu(Graph* graph, Node* in, const std::string& name = "prelu");
  Node* out() const { return out_; }
  ParamSlot slope() const { return slope_; }
  void Forward(const ForwardContext& ctx) override;
  void Backward() override;

 private:
  ParameterArena* arena_;
  Node* in_;
  Node* out_;
  ParamSlot slope_;
};

}  // namespace ctrps::nn

#endif  // CTRPS_WORKER_NN_LAYERS_ACTIVATION_PRELU_H_
