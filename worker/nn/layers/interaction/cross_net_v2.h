// CrossNetV2, the cross network of DCN-V2 (Wang et al., WWW 2021):
//   x_{l+1} = x_0 * (W_l x_l + b_l) + x_l,   l = 0 .. num_layers - 1
// Full rank: W_l is [width, width] (a Linear(width, width), Xavier-uniform).
// Low rank r > 0: W_l = U_l V_l with V_l [r, width] (a Linear(width, r)) and
// U_l [width, r] (a Linear(r, width)), both Xavier-uniform; b_l zeros.
// The output is x_L (x_0 itself when num_layers is 0).
#ifndef CTRPS_WORKER_NN_LAYERS_INTERACTION_CROSS_NET_V2_H_
#define CTRPS_WORKER_NN_LAYERS_INTERACTION_CROSS_NET_V2_H_

#include <cstdint>
#include <string>
#include <vector>

#include "worker/nn/graph.h"

namespace ctrps::nn {

class CrossNetV2 : public Layer {
 public:
  // low_rank = 0: full rank.
  CrossNetV2(Graph* graph, Node* in, int num_layers, int low_rank = 0,
             const std::string& name = "crossnet_v2");
  Node* out() const { return out_; }
  void Forward(const ForwardContext& ctx) override;
  void Backward() override;
  int64_t FlopsPerSample() const override;

 private:
  const float* x(int l) const;
  float* mutable_x(int l);

  ParameterArena* arena_;
  Node* in_;
  Node* out_;
  int num_layers_;
  int low_rank_;
  std::vector<ParamSlot> w_;  // full: W_l; low rank: U_l
  std::vector<ParamSlot> v_;  // low rank: V_l
  std::vector<ParamSlot> b_;
  AlignedVector hidden_;  // x_1 .. x_{L-1}
  AlignedVector z_;       // W_l x_l + b_l, [L, rows, width]
  AlignedVector h_;       // low rank: V_l x_l, [L, rows, r]
  AlignedVector dx_;      // Backward: d/d(x_l)
  AlignedVector dx0_;     // Backward: d/d(x_0) through the x_0 factors
  AlignedVector dz_;      // Backward: [rows, width]
  AlignedVector dh_;      // Backward: [rows, r]
};

}  // namespace ctrps::nn

#endif  // CTRPS_WORKER_NN_LAYERS_INTERACTION_CROSS_NET_V2_H_
