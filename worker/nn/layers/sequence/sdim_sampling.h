// SDIM's hash-based sampling of a long behaviour sequence (Cao et al., "Sampling
// Is All You Need on Modeling Long-Term User Behaviors for CTR Prediction",
// CIKM 2022).
//
// m = num_hashes random hyperplanes r_1..r_m (SimHash / signed random
// projections; N(0, 1) entries, fixed and not trained) give every vector x the
// bits <x, r_k> > 0. They are taken tau = hash_bits at a time: G = m / tau
// groups, and in group g a vector's code is the tau-bit number whose bit k
// (k < tau) is that of hyperplane k * G + g. For each sample with target
// (query) t and valid history rows h_l:
//
//   s_g  = sum of the h_l whose group-g code equals t's group-g code
//   u_g  = s_g / ||s_g||_2    (0 when no row matches)
//   out  = (1 / G) sum_g u_g
//
// Normalisation. The paper estimates the attention sum_l p(t, h_l)^tau h_l,
// p the SimHash collision probability, by the fraction of hash groups in
// which h_l lands in t's bucket, and L2-normalises the gathered sum (it
// reports L2 working better than L1). We normalise each group's sum and then
// average over groups: every group contributes a unit direction (or nothing),
// so the result does not grow with the history length, a group whose
// bucket holds many rows weighs as much as one with a single row, and the
// norm of `out` (at most 1) says in how many groups the target found
// related behaviour. FuxiCTR's SDIM sums per group and averages with no
// normalisation.
//
// Cost: the behaviour-side hashing (codes of every valid history row, one
// cblas_sgemm per sample against the [dim, m] hyperplanes) is done once per
// sequence and batch and does not depend on the target, so it is the part
// SDIM's BSE moves out of the serving path; the target side is one [B, dim]
// x [dim, m] product, then per sample O(length * G) code comparisons into a
// 0/1 selection matrix M [length, G] and one product s = M^T H (the backward:
// d_H = M d_s). No attention MLP, nothing per target that grows with a
// network.
//
// Gradients flow to the history rows through the normalised sums. The codes
// are piecewise constant, so the target gets no gradient from this layer
// (only through whatever else reads it) and the layer has no parameters.
//
// The hyperplanes are a buffer of the arena ([dim, m] row-major, named
// "<name>.hyperplanes"), drawn deterministically from `seed`, so they travel
// with the model's buffers into checkpoints and exports.
#ifndef CTRPS_WORKER_NN_LAYERS_SEQUENCE_SDIM_SAMPLING_H_
#define CTRPS_WORKER_NN_LAYERS_SEQUENCE_SDIM_SAMPLING_H_

#include <cstdint>
#include <string>
#include <vector>

#include "worker/nn/layers/sequence/sequence_pooling.h"

namespace ctrps::nn {

class SdimSampling final : public SequencePooling {
 public:
  // The query as for DinAttention: columns [query_offset, query_offset + dim)
  // of `query`. num_hashes > 0, hash_bits in [1, 16] dividing num_hashes
  // (callers validate configs; checked by assert).
  SdimSampling(Graph* graph, Node* seq, int max_len, Node* query, int64_t query_offset,
               int num_hashes, int hash_bits, uint64_t seed, const std::string& name = "sdim");

  void Forward(const ForwardContext& ctx) override;
  void Backward() override;
  // The hashing products of max_len history rows and the target, and the
  // selection products forward and backward.
  int64_t FlopsPerSample() const override;

  int num_hashes() const { return num_hashes_; }
  int hash_bits() const { return hash_bits_; }
  int num_groups() const { return num_hashes_ / hash_bits_; }
  // [dim, num_hashes] row-major: column k * num_groups() + g is bit k of
  // group g.
  const float* hyperplanes() const { return arena_->buffer(hyperplanes_); }
  ParamSlot hyperplanes_slot() const { return hyperplanes_; }

 private:
  // Codes [rows, G] of `rows` vectors x (row stride `ld`) into `codes`.
  void Hash(const float* x, int64_t rows, int64_t ld, uint16_t* codes);
  // match_[l * G + g] = 1 where sample b's row l has the target's group-g
  // code, else 0 (the selection matrix M of its valid rows); returns the
  // sample's length.
  int BuildMatch(int64_t b);

  ParameterArena* arena_;
  Node* query_;
  int64_t query_offset_;
  int num_hashes_;
  int hash_bits_;
  ParamSlot hyperplanes_;
  AlignedVector proj_;                 // scratch [max(max_len, B), m]
  std::vector<uint16_t> row_codes_;    // [N, G], packed valid rows
  std::vector<uint16_t> query_codes_;  // [B, G]
  AlignedVector match_;     // scratch [max_len, G]: 1 where a row's code equals the target's
  AlignedVector unit_;      // [B, G, dim]: u_g
  AlignedVector inv_norm_;  // [B, G]: 1 / ||s_g||, 0 without a match
  AlignedVector d_sum_;     // scratch [G, dim]
};

}  // namespace ctrps::nn

#endif  // CTRPS_WORKER_NN_LAYERS_SEQUENCE_SDIM_SAMPLING_H_
