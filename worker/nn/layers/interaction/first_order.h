// FirstOrder: the logistic-regression term of LR, FM, Wide&Deep and DeepFM,
// out[b] = sum_f in[b, f] + bias, where in holds each field's 1-dim
// first-order weight. The bias starts at 0; Wide&Deep goes without it (the
// deep part's output layer has one), as FuxiCTR.
#ifndef CTRPS_WORKER_NN_LAYERS_INTERACTION_FIRST_ORDER_H_
#define CTRPS_WORKER_NN_LAYERS_INTERACTION_FIRST_ORDER_H_

#include <string>

#include "worker/nn/graph.h"

namespace ctrps::nn {

class FirstOrder : public Layer {
 public:
  FirstOrder(Graph* graph, Node* in, bool use_bias = true, const std::string& name = "lr");
  Node* out() const { return out_; }        // [rows, 1]
  ParamSlot bias() const { return bias_; }  // size 0 without bias
  void Forward(const ForwardContext& ctx) override;
  void Backward() override;

 private:
  ParameterArena* arena_;
  Node* in_;
  Node* out_;
  bool use_bias_;
  ParamSlot bias_;
};

}  // namespace ctrps::nn

#endif  // CTRPS_WORKER_NN_LAYERS_INTERACTION_FIRST_ORDER_H_
