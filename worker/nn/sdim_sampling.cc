#include "worker/nn/sdim_sampling.h"

#include <cblas.h>

#include <algorithm>
#include <bit>
#include <cassert>
#include <cmath>

#include "worker/nn/random.h"

namespace ctrps::nn {
namespace {

// Calls f(g) for every group g < groups where a[g] == b[g]. A row matches the
// target in few groups, so the comparisons are made into a bit mask first
// (no branch per group) and only the matches are visited.
template <typename F>
inline void ForEachMatch(const uint16_t* a, const uint16_t* b, int groups, F f) {
  for (int g0 = 0; g0 < groups; g0 += 64) {
    const int n = std::min(64, groups - g0);
    uint64_t mask = 0;
    for (int g = 0; g < n; ++g) mask |= static_cast<uint64_t>(a[g0 + g] == b[g0 + g]) << g;
    while (mask != 0) {
      f(g0 + std::countr_zero(mask));
      mask &= mask - 1;
    }
  }
}

}  // namespace

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

  unit_.resize(batch * groups * d);
  inv_norm_.resize(batch * groups);
  const float inv_groups = 1.0f / static_cast<float>(groups);
  for (int64_t b = 0; b < batch; ++b) {
    float* sums = unit_.data() + b * groups * d;
    std::fill(sums, sums + groups * d, 0.0f);
    const uint16_t* qc = query_codes_.data() + b * groups;
    const int n = Length(b);
    for (int l = 0; l < n; ++l) {
      const uint16_t* rc = row_codes_.data() + (static_cast<int64_t>(offsets_[b]) + l) * groups;
      const float* h = Row(b, l);
      ForEachMatch(rc, qc, groups, [&](int g) {
        float* s = sums + g * d;
        for (int64_t j = 0; j < d; ++j) s[j] += h[j];
      });
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
    const uint16_t* qc = query_codes_.data() + b * groups;
    const int n = Length(b);
    float* dseq = seq_->grad() + b * seq_->width();
    for (int l = 0; l < max_len_; ++l) {
      float* dh = dseq + l * d;
      if (!accumulate) std::fill(dh, dh + d, 0.0f);
      if (l >= n) continue;
      const uint16_t* rc = row_codes_.data() + (static_cast<int64_t>(offsets_[b]) + l) * groups;
      ForEachMatch(rc, qc, groups, [&](int g) {
        const float* ds = d_sum_.data() + g * d;
        for (int64_t j = 0; j < d; ++j) dh[j] += ds[j];
      });
    }
  }
}

int64_t SdimSampling::FlopsPerSample() const {
  return 2 * static_cast<int64_t>(max_len_ + 1) * dim_ * num_hashes_;
}

}  // namespace ctrps::nn
