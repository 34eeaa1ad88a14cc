// MultiHeadSelfAttention: one of AutoInt's interacting layers (FuxiCTR's
// MultiHeadSelfAttention), over the F fields of each sample.
//
// in = [batch, F * d_in] (field-major rows: field f's vector x_f of d_in).
// With A = attention_dim, H = num_heads, d_h = A / H, per sample:
//   Q = X W_q^T, K = X W_k^T, V = X W_v^T                  [F, A] each
//   for each head h (columns [h d_h, (h + 1) d_h)):
//     P_h = softmax_rows(Q_h K_h^T / s)  (s = sqrt(d_h) with use_scale, else 1)
//     O_h = dropout(P_h) V_h
//   Z = O + R, R = X (d_in == A) or X W_res^T (else), with use_residual; Z = O without
//   out = relu(layer_norm(Z))  (layer norm over each field's A values, when layer_norm)
// out = [batch, F * A]. W_q, W_k, W_v, W_res are [A, d_in] (PyTorch's layout,
// Xavier-uniform, no bias); layer norm's gamma starts at 1, beta at 0.
//
// The projections are single cblas_sgemm calls over all batch x F rows; the
// attention products are one cblas_sgemm per sample and head, reading the
// head's columns in place through the leading dimension (no copies). Dropout
// masks are a pure function of (layer seed, ForwardContext::step).
#ifndef CTRPS_WORKER_NN_LAYERS_ATTENTION_MULTI_HEAD_SELF_ATTENTION_H_
#define CTRPS_WORKER_NN_LAYERS_ATTENTION_MULTI_HEAD_SELF_ATTENTION_H_

#include <cstdint>
#include <string>

#include "worker/nn/graph.h"
#include "worker/nn/parameter_arena.h"
#include "worker/nn/tensor.h"

namespace ctrps::nn {

struct SelfAttentionOptions {
  int num_fields = 1;     // F >= 1
  int attention_dim = 8;  // A, a multiple of num_heads
  int num_heads = 1;      // H >= 1
  bool use_residual = true;
  bool use_scale = false;
  bool layer_norm = false;
  float dropout = 0.0f;  // on the attention weights, in [0, 1)
  std::string name = "self_attention";
};

class MultiHeadSelfAttention : public Layer {
 public:
  // in->width() must be num_fields * d_in for some d_in >= 1; the options
  // must hold the ranges above (the caller validates configs).
  MultiHeadSelfAttention(Graph* graph, Node* in, const SelfAttentionOptions& options);

  Node* out() const { return out_; }  // [rows, F * A]
  void Forward(const ForwardContext& ctx) override;
  void Backward() override;
  int64_t FlopsPerSample() const override;

 private:
  ParameterArena* arena_;
  Node* in_;
  Node* out_;
  SelfAttentionOptions options_;
  int64_t d_in_;
  int64_t head_dim_;
  float scale_;  // multiplies the scores
  uint64_t seed_;
  bool identity_residual_;
  ParamSlot w_q_, w_k_, w_v_, w_res_, gamma_, beta_;  // w_res_, gamma_, beta_ may be empty
  bool dropped_ = false;                              // the last Forward applied dropout

  // Forward state, kept for Backward.
  AlignedVector q_, k_, v_;  // [rows * F, A]
  AlignedVector probs_;      // [rows, H, F, F]: softmax output
  AlignedVector mask_;       // [rows, H, F, F]: 0 or 1 / (1 - dropout), when dropped_
  AlignedVector weights_;    // [rows, H, F, F]: probs * mask (probs_ without dropout)
  AlignedVector xhat_;       // [rows * F, A]: normalised Z, with layer_norm
  AlignedVector inv_std_;    // [rows * F]
  // Backward scratch.
  AlignedVector dz_, dq_, dk_, dv_;  // [rows * F, A]
  AlignedVector dp_;                 // [F, F]
};

}  // namespace ctrps::nn

#endif  // CTRPS_WORKER_NN_LAYERS_ATTENTION_MULTI_HEAD_SELF_ATTENTION_H_
