// FieldConv: a convolution along the field axis of a per-sample feature map
// (FGCNN's Conv2d with a (kernel, 1) kernel, Liu et al., WWW 2019). The map
// of a sample is [height, dim, channels], channels last, flattened into the
// node; each of the dim columns is convolved separately with the same
// kernel, padded with zeros to keep the height ("same" padding of
// (kernel - 1) / 2 rows on each side, kernel odd):
//   out[h, d, o] = bias[o] + sum_{j, c} W[o, j, c] * in[h + j - pad, d, c]
// Computed as one matrix product: the rows (h, d) of all samples, each with
// its kernel window of kernel * in_channels values (im2col), times W^T.
// Initialised as PyTorch's Conv2d: W and bias uniform in +-1/sqrt(fan_in),
// fan_in = kernel * in_channels.
#ifndef CTRPS_WORKER_NN_LAYERS_CONV_FIELD_CONV_H_
#define CTRPS_WORKER_NN_LAYERS_CONV_FIELD_CONV_H_

#include <cstdint>
#include <string>

#include "worker/nn/graph.h"

namespace ctrps::nn {

class FieldConv : public Layer {
 public:
  // `in` is per-sample of width height * dim * in_channels; kernel odd, >= 1.
  FieldConv(Graph* graph, Node* in, int64_t height, int64_t dim, int64_t in_channels,
            int64_t out_channels, int64_t kernel, const std::string& name);
  Node* out() const { return out_; }  // height * dim * out_channels
  void Forward(const ForwardContext& ctx) override;
  void Backward() override;
  int64_t FlopsPerSample() const override;

 private:
  ParameterArena* arena_;
  Node* in_;
  Node* out_;
  int64_t height_, dim_, in_channels_, out_channels_, kernel_, pad_;
  ParamSlot weight_;  // [out_channels, kernel * in_channels]
  ParamSlot bias_;    // [out_channels]
  // [rows * height * dim, kernel * in_channels]: Forward's windows, then
  // Backward's gradient of them (each Forward is followed by one Backward).
  AlignedVector cols_;
};

}  // namespace ctrps::nn

#endif  // CTRPS_WORKER_NN_LAYERS_CONV_FIELD_CONV_H_
