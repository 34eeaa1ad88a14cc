// CrossNet, the cross network of DCN (Wang et al., ADKDD 2017), as FuxiCTR:
//   x_{l+1} = x_0 * (x_l . w_l) + b_l + x_l,   l = 0 .. num_layers - 1
// with w_l, b_l in R^width; w_l Xavier-uniform (a Linear(width, 1) weight),
// b_l zeros. The output is x_L (x_0 itself when num_layers is 0).
#ifndef CTRPS_WORKER_NN_LAYERS_INTERACTION_CROSS_NET_H_
#define CTRPS_WORKER_NN_LAYERS_INTERACTION_CROSS_NET_H_

#include <cstdint>
#include <string>
#include <vector>

#include "worker/nn/graph.h"

namespace ctrps::nn {

class CrossNet : public Layer {
 public:
  CrossNet(Graph* graph, Node* in, int num_layers, const std::string& name = "crossnet");
  Node* out() const { return out_; }
  ParamSlot weight(int l) const { return weights_[l]; }
  ParamSlot bias(int l) const { return biases_[l]; }
  void Forward(const ForwardContext& ctx) override;
  void Backward() override;
  int64_t FlopsPerSample() const override;

 private:
  // x_l for l in [0, num_layers].
  const float* x(int l) const;
  float* mutable_x(int l);

  ParameterArena* arena_;
  Node* in_;
  Node* out_;
  int num_layers_;
  std::vector<ParamSlot> weights_;
  std::vector<ParamSlot> biases_;
  AlignedVector hidden_;  // x_1 .. x_{L-1}, each [rows, width]
  AlignedVector dots_;    // x_l . w_l, [L, rows]
  AlignedVector dx_;      // Backward: d/d(x_l) flowing down
  AlignedVector dx0_;     // Backward: d/d(x_0) through the x_0 factors
  AlignedVector ddot_;    // Backward: [rows]
};

}  // namespace ctrps::nn

#endif  // CTRPS_WORKER_NN_LAYERS_INTERACTION_CROSS_NET_H_
