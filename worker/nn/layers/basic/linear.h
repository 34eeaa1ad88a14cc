// Linear: out = in W^T + b (torch.nn.Linear).
//
// W is [out_width, in_width] row-major (PyTorch's layout), Xavier-uniform
// initialised; b is [out_width], zeros. Products go through cblas_sgemm.
#ifndef CTRPS_WORKER_NN_LAYERS_BASIC_LINEAR_H_
#define CTRPS_WORKER_NN_LAYERS_BASIC_LINEAR_H_

#include <cstdint>
#include <string>

#include "worker/nn/graph.h"

namespace ctrps::nn {

class Linear : public Layer {
 public:
  Linear(Graph* graph, Node* in, int64_t out_width, bool use_bias = true,
         const std::string& name = "linear");

  Node* out() const { return out_; }
  ParamSlot weight() const { return weight_; }
  ParamSlot bias() const { return bias_; }  // size 0 without bias

  void Forward(const ForwardContext& ctx) override;
  void Backward() override;
  int64_t FlopsPerSample() const override;

 private:
  ParameterArena* arena_;
  Node* in_;
  Node* out_;
  bool use_bias_;
  ParamSlot weight_;
  ParamSlot bias_;
};

}  // namespace ctrps::nn

#endif  // CTRPS_WORKER_NN_LAYERS_BASIC_LINEAR_H_
