// Inverted dropout: in training each element is kept with probability
// 1 - rate and scaled by 1 / (1 - rate), else zeroed; in evaluation the
// layer is the identity. The mask is a pure function of (layer seed,
// ForwardContext::step), so replaying a step gives the same mask.
#ifndef CTRPS_WORKER_NN_LAYERS_BASIC_DROPOUT_H_
#define CTRPS_WORKER_NN_LAYERS_BASIC_DROPOUT_H_

#include "worker/nn/graph.h"

namespace ctrps::nn {

class Dropout : public Layer {
 public:
  // 0 <= rate < 1.
  Dropout(Graph* graph, Node* in, float rate);
  Node* out() const { return out_; }
  void Forward(const ForwardContext& ctx) override;
  void Backward() override;

 private:
  Node* in_;
  Node* out_;
  float rate_;
  uint64_t seed_;
  bool last_training_ = false;
  AlignedVector mask_;  // 0 or 1 / (1 - rate)
};

}  // namespace ctrps::nn

#endif  // CTRPS_WORKER_NN_LAYERS_BASIC_DROPOUT_H_
