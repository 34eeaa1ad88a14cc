// LearnedVector: a trainable vector as a rows = 1 node, out = [1, size].
// FinalMLP uses it as the feature-selection context when no context fields
// are given (FuxiCTR's fs*_ctx_bias, zeros at start).
#ifndef CTRPS_WORKER_NN_LAYERS_BASIC_LEARNED_VECTOR_H_
#define CTRPS_WORKER_NN_LAYERS_BASIC_LEARNED_VECTOR_H_

#include <cstdint>
#include <string>

#include "worker/nn/graph.h"

namespace ctrps::nn {

class LearnedVector : public Layer {
 public:
  LearnedVector(Graph* graph, int64_t size, const Initializer& init, const std::string& name);
  Node* out() const { return out_; }
  ParamSlot value() const { return value_; }
  void Forward(const ForwardContext& ctx) override;
  void Backward() override;

 private:
  ParameterArena* arena_;
  Node* out_;
  ParamSlot value_;
};

}  // namespace ctrps::nn

#endif  // CTRPS_WORKER_NN_LAYERS_BASIC_LEARNED_VECTOR_H_
