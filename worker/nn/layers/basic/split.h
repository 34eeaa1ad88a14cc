// Split: cuts a node column-wise into outputs of the given widths (which sum
// to the input's width); the inverse of Concat.
#ifndef CTRPS_WORKER_NN_LAYERS_BASIC_SPLIT_H_
#define CTRPS_WORKER_NN_LAYERS_BASIC_SPLIT_H_

#include <cstdint>
#include <vector>

#include "worker/nn/graph.h"

namespace ctrps::nn {

class Split : public Layer {
 public:
  Split(Graph* graph, Node* in, const std::vector<int64_t>& widths);
  Node* out(int i) const { return outputs_[i]; }
  int num_outputs() const { return static_cast<int>(outputs_.size()); }
  void Forward(const ForwardContext& ctx) override;
  void Backward() override;

 private:
  Node* in_;
  std::vector<Node*> outputs_;
};

}  // namespace ctrps::nn

#endif  // CTRPS_WORKER_NN_LAYERS_BASIC_SPLIT_H_
