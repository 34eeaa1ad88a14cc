// Add: elementwise sum of nodes of the same width, out = in_0 + in_1 + ...
// (e.g. DeepFM's logit = first order + FM + DNN).
#ifndef CTRPS_WORKER_NN_LAYERS_BASIC_ADD_H_
#define CTRPS_WORKER_NN_LAYERS_BASIC_ADD_H_

#include <vector>

#include "worker/nn/graph.h"

namespace ctrps::nn {

class Add : public Layer {
 public:
  Add(Graph* graph, std::vector<Node*> inputs);
  Node* out() const { return out_; }
  void Forward(const ForwardContext& ctx) override;
  void Backward() override;

 private:
  std::vector<Node*> inputs_;
  Node* out_;
};

}  // namespace ctrps::nn

#endif  // CTRPS_WORKER_NN_LAYERS_BASIC_ADD_H_
