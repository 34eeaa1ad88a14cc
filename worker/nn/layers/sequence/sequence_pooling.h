// Pooling of a behaviour sequence into one vector per sample: the common part
// of the sequence layers (MeanSequencePooling here, DinAttention,
// SdimSampling) and the mean pooling that is the no-attention baseline.
//
// The sequence is a per-sample input node of width max_len * dim: sample b's
// history is max_len rows of dim floats, oldest first, of which the first
// lengths[b] are valid. Rows past the length are never read, and their
// gradient is written as zero, so padding may hold anything. The lengths are
// side data (not a node): set_lengths() before each Forward(), and the array
// must stay unchanged until the matching Backward().
#ifndef CTRPS_WORKER_NN_LAYERS_SEQUENCE_SEQUENCE_POOLING_H_
#define CTRPS_WORKER_NN_LAYERS_SEQUENCE_SEQUENCE_POOLING_H_

#include <cstdint>
#include <vector>

#include "worker/nn/graph.h"

namespace ctrps::nn {

class SequencePooling : public Layer {
 public:
  // [B, dim]: the pooled history of each sample.
  Node* out() const { return out_; }
  int max_len() const { return max_len_; }
  int dim() const { return dim_; }

  // [B] valid rows per sample. Values outside [0, max_len] are clamped.
  void set_lengths(const int32_t* lengths) { lengths_ = lengths; }

 protected:
  // `seq` must be a per-sample node of width max_len * dim (max_len, dim > 0).
  SequencePooling(Graph* graph, Node* seq, int max_len, int dim);

  // Fills offsets_ (size B + 1) with the prefix sums of the clamped lengths:
  // sample b's valid rows are packed rows [offsets_[b], offsets_[b + 1]).
  // Returns the number of valid rows over the batch.
  int64_t PackOffsets();
  int Length(int64_t b) const { return offsets_[b + 1] - offsets_[b]; }
  // Row l of sample b's history.
  const float* Row(int64_t b, int64_t l) const { return seq_->value() + (b * max_len_ + l) * dim_; }

  Node* seq_;
  Node* out_;
  int max_len_;
  int dim_;
  const int32_t* lengths_ = nullptr;
  std::vector<int32_t> offsets_;
};

// out[b] = mean of sample b's valid rows; zeros for an empty history (which
// then gets no gradient).
class MeanSequencePooling final : public SequencePooling {
 public:
  MeanSequencePooling(Graph* graph, Node* seq, int max_len, int dim)
      : SequencePooling(graph, seq, max_len, dim) {}
  void Forward(const ForwardContext& ctx) override;
  void Backward() override;
};

}  // namespace ctrps::nn

#endif  // CTRPS_WORKER_NN_LAYERS_SEQUENCE_SEQUENCE_POOLING_H_
