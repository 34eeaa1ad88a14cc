// BilinearFusion: FinalMLP's multi-head bilinear fusion of two streams
// (Mao et al., AAAI 2023; FuxiCTR's InteractionAggregation, output_dim 1).
// Both inputs are split into num_heads equal heads; with x_h, y_h the h-th
// heads,
//   out = b + w_x . x + w_y . y + sum_h x_h^T W_h y_h
// w_x [x_width] and w_y [y_width] are Xavier-uniform (Linear(., 1) weights),
// b starts at 0 (FuxiCTR's two Linear biases, merged into one), W_h
// [x_width/H, y_width/H] is Xavier-uniform over FuxiCTR's
// [H * (x_width/H) * (y_width/H), 1] shape.
#ifndef CTRPS_WORKER_NN_LAYERS_INTERACTION_BILINEAR_FUSION_H_
#define CTRPS_WORKER_NN_LAYERS_INTERACTION_BILINEAR_FUSION_H_

#include <cstdint>
#include <string>

#include "worker/nn/graph.h"

namespace ctrps::nn {

class BilinearFusion : public Layer {
 public:
  // Both widths must be divisible by num_heads (>= 1).
  BilinearFusion(Graph* graph, Node* x, Node* y, int num_heads, const std::string& name = "fusion");
  Node* out() const { return out_; }  // [rows, 1]
  void Forward(const ForwardContext& ctx) override;
  void Backward() override;
  int64_t FlopsPerSample() const override;

 private:
  ParameterArena* arena_;
  Node* x_;
  Node* y_;
  Node* out_;
  int num_heads_;
  ParamSlot w_x_;
  ParamSlot w_y_;
  ParamSlot bias_;
  ParamSlot w_xy_;    // [H, hx, hy]
  AlignedVector t_;   // x_h W_h for every head: [rows, y_width]
  AlignedVector dt_;  // Backward: [rows, y_width]
};

}  // namespace ctrps::nn

#endif  // CTRPS_WORKER_NN_LAYERS_INTERACTION_BILINEAR_FUSION_H_
