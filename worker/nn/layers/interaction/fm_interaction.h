// FmInteraction: the second-order term of a factorization machine
// (Rendle 2010; FuxiCTR's InnerProductInteraction "product_sum"),
//   out[b] = sum_{i<j} <v_i, v_j> = 0.5 * sum_d ((sum_f v_fd)^2 - sum_f v_fd^2)
// over the fields of in = [batch, num_fields * dim] (field-major rows).
#ifndef CTRPS_WORKER_NN_LAYERS_INTERACTION_FM_INTERACTION_H_
#define CTRPS_WORKER_NN_LAYERS_INTERACTION_FM_INTERACTION_H_

#include <cstdint>

#include "worker/nn/graph.h"

namespace ctrps::nn {

class FmInteraction : public Layer {
 public:
  FmInteraction(Graph* graph, Node* in, int64_t num_fields, int64_t dim);
  Node* out() const { return out_; }  // [rows, 1]
  void Forward(const ForwardContext& ctx) override;
  void Backward() override;
  int64_t FlopsPerSample() const override;

 private:
  Node* in_;
  Node* out_;
  int64_t num_fields_;
  int64_t dim_;
  AlignedVector field_sum_;  // [rows, dim]: sum_f v_f, kept for Backward
};

}  // namespace ctrps::nn

#endif  // CTRPS_WORKER_NN_LAYERS_INTERACTION_FM_INTERACTION_H_
