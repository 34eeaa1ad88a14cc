#include "worker/nn/layers/sequence/embedding_pooling.h"

#include <cstdint>
#include <vector>

#include "gtest/gtest.h"
#include "worker/nn/gradient_check.h"

namespace ctrps::nn {
namespace {

TEST(EmbeddingPoolingTest, SumAndMeanOverCsrLists) {
  // Lists: {r0, r1}, {}, {r2}.
  const std::vector<int64_t> offsets = {0, 2, 2, 3};
  const std::vector<float> values = {1, 2, 3, 4, 5, 6};
  std::vector<float> out(6, -1.0f);
  PoolEmbeddings(PoolingMode::kSum, 2, offsets, values.data(), out.data());
  EXPECT_EQ(out, (std::vector<float>{4, 6, 0, 0, 5, 6}));
  PoolEmbeddings(PoolingMode::kMean, 2, offsets, values.data(), out.data());
  EXPECT_EQ(out, (std::vector<float>{2, 3, 0, 0, 5, 6}));
  const std::vector<int32_t> offsets32 = {0, 2, 2, 3};
  PoolEmbeddings(PoolingMode::kMean, 2, offsets32, values.data(), out.data());
  EXPECT_EQ(out, (std::vector<float>{2, 3, 0, 0, 5, 6}));
}

TEST(EmbeddingPoolingTest, BackwardMatchesFiniteDifferences) {
  constexpr int kDim = 3;
  const std::vector<int64_t> offsets = {0, 3, 3, 4, 6};
  const int lists = 4, rows = 6;
  const std::vector<float> seed = RandomValues(lists * kDim, 7);
  for (PoolingMode mode : {PoolingMode::kSum, PoolingMode::kMean}) {
    std::vector<float> values = RandomValues(rows * kDim, 1);
    std::vector<float> out(lists * kDim), d_values(rows * kDim);
    auto loss = [&] {
      PoolEmbeddings(mode, kDim, offsets, values.data(), out.data());
      double l = 0;
      for (int i = 0; i < lists * kDim; ++i) l += double{seed[i]} * out[i];
      return l;
    };
    PoolEmbeddingsBackward(mode, kDim, offsets, seed.data(), d_values.data());
    const float eps = 1e-3f;
    for (int i = 0; i < rows * kDim; ++i) {
      const float saved = values[i];
      values[i] = saved + eps;
      const double plus = loss();
      values[i] = saved - eps;
      const double minus = loss();
      values[i] = saved;
      EXPECT_NEAR(d_values[i], (plus - minus) / (2 * eps), 1e-3) << i;
    }
  }
}

}  // namespace
}  // namespace ctrps::nn
