#include "worker/nn/layers/sequence/sdim_sampling.h"

#include <cblas.h>

#include <algorithm>
#include <cassert>
#include <cmath>

#include "worker/nn/random.h"

namespace ctrps::nn {

SdimSampling::SdimSampling(Graph* graph, Node* seq, int max_len, Node* query, int64_t query_offset,
                           int num_hashes, int hash_bits, uint64_t seed, const std::string& name)
    : SequencePooling(graph, seq, max_len, static_cast<int>(seq->width() / max_len)),
      arena_(graph->arena()),
      query_(query),
      query_offset_(query_offset),
      num_hashes_(num_hashes),
      hash_bits_(hash_bits) {
  assert(query->per_sample() && query_offset >= 0 && query_offset + dim_ <= query->width());
  assert(num_hashes > 0 && hash_bits >= 1 && hash_bits <= 16 && num_hashes % hash_bits == 0);
  const int64_t n = static_cast<int64_t>(dim_) * num_hashes_;
  hyperplanes_ = arena_->AddBuffer(name + ".hyperplanes", n, 0.0f);
  // N(0, 1) entries by Box-Muller, so the hyperplane normals are uniformly
  // distributed directions (what SimHash's collision probability assumes).
  Rng rng(seed);
  float* r = arena_->buffer(hyperplanes_);
  for (int64_t i = 0; i < n; ++i) {
    const double u1 = 1.0 - static_cast<double>(rng.Uniform());  // (0, 1]
    const double u2 = rng.Uniform();
    r[i] = static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
  }
}

void SdimSampling::Hash(const float* x, int64_t rows, int64_t ld, uint16_t* codes) {
  if (rows == 0) return;
  const int m = num_hashes_, groups = num_groups();
  proj_.resize(rows * m);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(rows), m, dim_, 1.0f, x,
              static_cast<int>(ld), arena_->buffer(hyperplanes_), m, 0.0f, proj_.data(), m);
  // Bit k of group g is hyperplane column k * groups + g, so each bit is
  // one contiguous pass over the groups (vectorised).
  for (int64_t r = 0; r < rows; ++r) {
    const float* p = proj_.data() + r * m;
    uint16_t* c = codes + r * groups;
    for (int g = 0; g < groups; ++g) c[g] = p[g] > 0.0f ? 1 : 0;
    for (int k = 1; k < hash_bits_; ++k) {
      const float* pk = p + k * groups;
      for (int g = 0; g < groups; ++g) {
        c[g] = static_cast<uint16_t>(c[g] | ((pk[g] > 0.0f ? 1 : 0) << k));
      }
    }
  }
}

int SdimSampling::BuildMatch(int64_t b) {
  const int n = Length(b);
  const int groups = num_groups();
  const uint16_t* qc = query_codes_.data() + b * groups;
  for (int l = 0; l < n; ++l) {
    const uint16_t* rc = row_codes_.data() + (static_cast<int64_t>(offsets_[b]) + l) * groups;
    float* m = match_.data() + static_cast<int64_t>(l) * groups;
    for (int g = 0; g < groups; ++g) m[g] = rc[g] == qc[g] ? 1.0f : 0.0f;
  }
  return n;
}

void SdimSampling::Forward(const ForwardContext&) {
  const int64_t batch = seq_->rows();
  const int64_t d = dim_;
  const int groups = num_groups();
  const int64_t rows = PackOffsets();
  // Behaviour side: the codes of every valid row, independent of the target.
  row_codes_.resize(rows * groups);
  for (int64_t b = 0; b < batch; ++b) {
    Hash(Row(b, 0), Length(b), d, row_codes_.data() + static_cast<int64_t>(offsets_[b]) * groups);
  }
  // Target side: one product for the batch.
  query_codes_.resize(batch * groups);
  Hash(query_->value() + query_offset_, batch, query_->width(), query_codes_.data());

  match_.resize(static_cast<int64_t>(max_len_) * groups);
  unit_.resize(batch * groups * d);
  inv_norm_.resize(batch * groups);
  const float inv_groups = 1.0f / static_cast<float>(groups);
  for (int64_t b = 0; b < batch; ++b) {
    float* sums = unit_.data() + b * groups * d;
    // s = M^T H: the [G, n] selection times the sample's [n, dim] rows.
    // One product instead of a scattered add per (row, group) match: with
    // one bit per group a row matches in half the groups, and the product
    // runs at BLAS speed however many match.
    const int n = BuildMatch(b);
    if (n > 0) {
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, groups, static_cast<int>(d), n, 1.0f,
                  match_.data(), groups, Row(b, 0), static_cast<int>(d), 0.0f, sums,
                  static_cast<int>(d));
    } else {
      std::fill(sums, sums + groups * d, 0.0f);
    }
    float* y = out_->mutable_value() + b * d;
    std::fill(y, y + d, 0.0f);
    for (int g = 0; g < groups; ++g) {
      float* s = sums + g * d;
      double sq = 0;
      for (int64_t j = 0; j < d; ++j) sq += double{s[j]} * s[j];
      // No match (or an all-zero match) leaves s = 0: no direction, no gradient.
      const float inv = sq > 0 ? static_cast<float>(1.0 / std::sqrt(sq)) : 0.0f;
      inv_norm_[b * groups + g] = inv;
      for (int64_t j = 0; j < d; ++j) {
        s[j] *= inv;
        y[j] += inv_groups * s[j];
      }
    }
  }
}

void SdimSampling::Backward() {
  if (!seq_->needs_grad()) return;
  const int64_t batch = seq_->rows();
  const int64_t d = dim_;
  const int groups = num_groups();
  const float inv_groups = 1.0f / static_cast<float>(groups);
  const bool accumulate = seq_->BeginGradWrite();
  d_sum_.resize(groups * d);
  for (int64_t b = 0; b < batch; ++b) {
    // d(u)/d(s) = (I - u u^T) / ||s||, so d_s = (dy / G - u <u, dy / G>) / ||s||.
    const float* dy = out_->grad() + b * d;
    for (int g = 0; g < groups; ++g) {
      const float* u = unit_.data() + (b * groups + g) * d;
      const float inv = inv_norm_[b * groups + g];
      float* ds = d_sum_.data() + g * d;
      float dot = 0.0f;
      for (int64_t j = 0; j < d; ++j) dot += u[j] * dy[j];
      for (int64_t j = 0; j < d; ++j) ds[j] = inv * inv_groups * (dy[j] - u[j] * dot);
    }
    // d_h = M d_s for the valid rows; padding rows get nothing. M is rebuilt
    // from the kept codes: comparing is cheaper than keeping [N, G] floats
    // (1 GB at batch 1024 and length 5,000) between the passes.
    const int n = BuildMatch(b);
    float* dseq = seq_->grad() + b * seq_->width();
    if (n > 0) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, static_cast<int>(d), groups, 1.0f,
                  match_.data(), groups, d_sum_.data(), static_cast<int>(d),
                  accumulate ? 1.0f : 0.0f, dseq, static_cast<int>(d));
    }
    if (!accumulate) std::fill(dseq + n * d, dseq + max_len_ * d, 0.0f);
  }
}

int64_t SdimSampling::FlopsPerSample() const {
  // Hashing, then the selection products s = M^T H and d_H = M d_s.
  return 2 * static_cast<int64_t>(max_len_ + 1) * dim_ * num_hashes_ +
         4 * static_cast<int64_t>(max_len_) * dim_ * num_groups();
}

}  // namespace ctrps::nn
