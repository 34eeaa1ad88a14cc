// HeadMeanLinear: a Linear(d, 1) shared by H heads, averaged over the heads
// (FCN's logit: `self.dfc(x).mean(dim=1)` over x = [batch, H, d]):
//   out[b] = (1 / H) sum_h <w, x[b, h]> + bias
// in = [batch, H * d] (head-major). w [d] is Xavier-uniform, bias starts 0.
#ifndef CTRPS_WORKER_NN_LAYERS_BASIC_HEAD_MEAN_LINEAR_H_
#define CTRPS_WORKER_NN_LAYERS_BASIC_HEAD_MEAN_LINEAR_H_

#include <cstdint>
#include <string>

#include "worker/nn/graph.h"
#include "worker/nn/parameter_arena.h"
#include "worker/nn/tensor.h"

namespace ctrps::nn {

class HeadMeanLinear : public Layer {
 public:
  // in->width() is a multiple of num_heads >= 1.
  HeadMeanLinear(Graph* graph, Node* in, int num_heads, const std::string& name = "head_linear");
  Node* out() const { return out_; }  // [rows, 1]
  void Forward(const ForwardContext& ctx) override;
  void Backward() override;
  int64_t FlopsPerSample() const override;

 private:
  ParameterArena* arena_;
  Node* in_;
  Node* out_;
  int64_t heads_;
  int64_t d_;
  ParamSlot w_, bias_;
  AlignedVector per_head_;  // [rows * H]
};

}  // namespace ctrps::nn

#endif  // CTRPS_WORKER_NN_LAYERS_BASIC_HEAD_MEAN_LINEAR_H_
