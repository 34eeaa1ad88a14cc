// InnerProduct: the inner products of all field pairs (PNN's inner product
// layer; FuxiCTR's InnerProductInteraction "inner_product"),
//   out[b, p(i, j)] = <v_i, v_j>  for i < j,
// over the fields of in = [batch, num_fields * dim] (field-major rows), the
// pairs in row-major order: (0, 1), (0, 2), ..., (0, F-1), (1, 2), ...
#ifndef CTRPS_WORKER_NN_MODELS_IPNN_INNER_PRODUCT_H_
#define CTRPS_WORKER_NN_MODELS_IPNN_INNER_PRODUCT_H_

#include <cstdint>

#include "worker/nn/graph.h"

namespace ctrps::nn {

class InnerProduct : public Layer {
 public:
  // num_fields >= 2; in->width() == num_fields * dim.
  InnerProduct(Graph* graph, Node* in, int64_t num_fields, int64_t dim);
  Node* out() const { return out_; }  // [rows, num_fields * (num_fields - 1) / 2]
  void Forward(const ForwardContext& ctx) override;
  void Backward() override;
  int64_t FlopsPerSample() const override;

 private:
  Node* in_;
  Node* out_;
  int64_t num_fields_;
  int64_t dim_;
  AlignedVector d_field_;  // [dim]: one field's input gradient, for Backward
};

}  // namespace ctrps::nn

#endif  // CTRPS_WORKER_NN_MODELS_IPNN_INNER_PRODUCT_H_
