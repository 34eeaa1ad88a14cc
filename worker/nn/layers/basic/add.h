// Add: elementwise sum of nodes of the same width, scaled,
// out = scale * (in_0 + in_1 + ...) (e.g. DeepFM's logit = first order + FM +
// DNN; FCN's, the mean of two logits with scale 1/2).
#ifndef CTRPS_WORKER_NN_LAYERS_BASIC_ADD_H_
#define CTRPS_WORKER_NN_LAYERS_BASIC_ADD_H_

#include <vector>

#include "worker/nn/graph.h"

namespace ctrps::nn {

class Add : public Layer {
 public:
  Add(Graph* graph, std::vector<Node*> inputs, float scale = 1.0f);
  Node* out() const { return out_; }
  void Forward(const ForwardContext& ctx) override;
  void Backward() override;

 private:
  std::vector<Node*> inputs_;
  Node* out_;
  float scale_;
};

}  // namespace ctrps::nn

#endif  // CTRPS_WORKER_NN_LAYERS_BASIC_ADD_H_
