// FieldMaxPool: max-pooling along the field axis of a per-sample feature map
// [height, dim, channels] (channels last, as FieldConv), in windows of `pool`
// rows: out[h', d, c] = max over h in [h' * pool, min(height, h' * pool +
// pool)) of in[h, d, c]; out height = ceil(height / pool), the last window
// shorter when pool does not divide height. The gradient goes to the row
// that held the maximum (the first one on ties).
#ifndef CTRPS_WORKER_NN_LAYERS_CONV_FIELD_MAX_POOL_H_
#define CTRPS_WORKER_NN_LAYERS_CONV_FIELD_MAX_POOL_H_

#include <cstdint>
#include <vector>

#include "worker/nn/graph.h"

namespace ctrps::nn {

class FieldMaxPool : public Layer {
 public:
  // `in` is per-sample of width height * row_width (row_width = dim *
  // channels); pool >= 1.
  FieldMaxPool(Graph* graph, Node* in, int64_t height, int64_t row_width, int64_t pool);
  static int64_t OutHeight(int64_t height, int64_t pool) { return (height + pool - 1) / pool; }
  Node* out() const { return out_; }  // OutHeight(height, pool) * row_width
  void Forward(const ForwardContext& ctx) override;
  void Backward() override;

 private:
  Node* in_;
  Node* out_;
  int64_t height_, row_width_, pool_, out_height_;
  std::vector<int32_t> argmax_;  // per output value, the input row of its maximum
};

}  // namespace ctrps::nn

#endif  // CTRPS_WORKER_NN_LAYERS_CONV_FIELD_MAX_POOL_H_
