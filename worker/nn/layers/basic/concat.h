// Concat: joins nodes column-wise, out = [in_0 | in_1 | ...].
// All inputs must agree in per_sample().
#ifndef CTRPS_WORKER_NN_LAYERS_BASIC_CONCAT_H_
#define CTRPS_WORKER_NN_LAYERS_BASIC_CONCAT_H_

#include <vector>

#include "worker/nn/graph.h"

namespace ctrps::nn {

class Concat : public Layer {
 public:
  Concat(Graph* graph, std::vector<Node*> inputs);
  Node* out() const { return out_; }
  void Forward(const ForwardContext& ctx) override;
  void Backward() override;

 private:
  std::vector<Node*> inputs_;
  Node* out_;
};

}  // namespace ctrps::nn

#endif  // CTRPS_WORKER_NN_LAYERS_BASIC_CONCAT_H_
