// Pooling of variable-length embedding lists (multi-valued fields) into one
// embedding per list, in CSR form: list i owns rows
// [offsets[i], offsets[i + 1]) of `values` ([offsets.back(), dim]
// row-major), and its pooled embedding is row i of `out` ([num_lists, dim]).
// Sum adds the rows; mean divides the sum by the list length. An empty list
// pools to zeros (and gets no gradient), as FuxiCTR's masked pooling does.
//
// Offsets come from our own batch builder, so they are trusted (checked only
// by assert): offsets[0] == 0, nondecreasing.
#ifndef CTRPS_WORKER_NN_LAYERS_SEQUENCE_EMBEDDING_POOLING_H_
#define CTRPS_WORKER_NN_LAYERS_SEQUENCE_EMBEDDING_POOLING_H_

#include <cstdint>
#include <span>

namespace ctrps::nn {

enum class PoolingMode { kSum, kMean };

// out[i] = pool(values[offsets[i] .. offsets[i+1])). Overwrites out.
void PoolEmbeddings(PoolingMode mode, int64_t dim, std::span<const int64_t> offsets,
                    const float* values, float* out);
void PoolEmbeddings(PoolingMode mode, int64_t dim, std::span<const int32_t> offsets,
                    const float* values, float* out);

// d_values from d_out: every row of list i gets d_out[i] (divided by the
// length for mean). Overwrites d_values ([offsets.back(), dim]).
void PoolEmbeddingsBackward(PoolingMode mode, int64_t dim, std::span<const int64_t> offsets,
                            const float* d_out, float* d_values);
void PoolEmbeddingsBackward(PoolingMode mode, int64_t dim, std::span<const int32_t> offsets,
                            const float* d_out, float* d_values);

}  // namespace ctrps::nn

#endif  // CTRPS_WORKER_NN_LAYERS_SEQUENCE_EMBEDDING_POOLING_H_
