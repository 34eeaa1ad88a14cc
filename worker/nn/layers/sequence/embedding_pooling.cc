#include "worker/nn/layers/sequence/embedding_pooling.h"

#include <cassert>

namespace ctrps::nn {
namespace {

template <typename Offset>
void Pool(PoolingMode mode, int64_t dim, std::span<const Offset> offsets, const float* values,
          float* out) {
  assert(!offsets.empty() && offsets[0] == 0);
  const int64_t n = static_cast<int64_t>(offsets.size()) - 1;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t begin = offsets[i], end = offsets[i + 1];
    assert(end >= begin);
    float* o = out + i * dim;
    for (int64_t k = 0; k < dim; ++k) o[k] = 0.0f;
    for (int64_t row = begin; row < end; ++row) {
      const float* v = values + row * dim;
      for (int64_t k = 0; k < dim; ++k) o[k] += v[k];
    }
    if (mode == PoolingMode::kMean && end > begin) {
      const float scale = 1.0f / static_cast<float>(end - begin);
      for (int64_t k = 0; k < dim; ++k) o[k] *= scale;
    }
  }
}

template <typename Offset>
void PoolBackward(PoolingMode mode, int64_t dim, std::span<const Offset> offsets,
                  const float* d_out, float* d_values) {
  assert(!offsets.empty() && offsets[0] == 0);
  const int64_t n = static_cast<int64_t>(offsets.size()) - 1;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t begin = offsets[i], end = offsets[i + 1];
    const float scale =
        mode == PoolingMode::kMean && end > begin ? 1.0f / static_cast<float>(end - begin) : 1.0f;
    const float* g = d_out + i * dim;
    for (int64_t row = begin; row < end; ++row) {
      float* d = d_values + row * dim;
      for (int64_t k = 0; k < dim; ++k) d[k] = g[k] * scale;
    }
  }
}

}  // namespace

void PoolEmbeddings(PoolingMode mode, int64_t dim, std::span<const int64_t> offsets,
                    const float* values, float* out) {
  Pool(mode, dim, offsets, values, out);
}
void PoolEmbeddings(PoolingMode mode, int64_t dim, std::span<const int32_t> offsets,
                    const float* values, float* out) {
  Pool(mode, dim, offsets, values, out);
}
void PoolEmbeddingsBackward(PoolingMode mode, int64_t dim, std::span<const int64_t> offsets,
                            const float* d_out, float* d_values) {
  PoolBackward(mode, dim, offsets, d_out, d_values);
}
void PoolEmbeddingsBackward(PoolingMode mode, int64_t dim, std::span<const int32_t> offsets,
                            const float* d_out, float* d_values) {
  PoolBackward(mode, dim, offsets, d_out, d_values);
}

}  // namespace ctrps::nn
