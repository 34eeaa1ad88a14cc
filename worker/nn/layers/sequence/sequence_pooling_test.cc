#include "worker/nn/layers/sequence/sequence_pooling.h"

#include <cstdint>
#include <vector>

#include "gtest/gtest.h"
#include "worker/nn/gradient_check.h"

namespace ctrps::nn {
namespace {

constexpr int kBatch = 4, kLen = 5, kDim = 3;

TEST(MeanSequencePoolingTest, AveragesValidRowsOnly) {
  ParameterArena arena(1);
  Graph graph(&arena, 1);
  Node* seq = graph.AddInput(kLen * kDim, false);
  auto* pool = graph.Add<MeanSequencePooling>(seq, kLen, kDim);
  // Padding holds garbage: it must not be read.
  std::vector<float> x = RandomValues(kBatch * kLen * kDim, 1);
  const std::vector<int32_t> lengths = {5, 0, 2, 9};  // 9 is clamped to 5
  pool->set_lengths(lengths.data());
  graph.BindInput(seq, x.data(), nullptr);
  graph.Forward(kBatch, {});
  for (int b = 0; b < kBatch; ++b) {
    const int n = std::min(lengths[b], kLen);
    for (int j = 0; j < kDim; ++j) {
      double ref = 0;
      for (int l = 0; l < n; ++l) ref += x[(b * kLen + l) * kDim + j];
      if (n > 0) ref /= n;
      EXPECT_NEAR(pool->out()->value()[b * kDim + j], ref, 1e-6) << b << " " << j;
    }
  }
}

TEST(MeanSequencePoolingTest, BackwardMatchesFiniteDifferencesAndZeroesPadding) {
  ParameterArena arena(1);
  Graph graph(&arena, 1);
  Node* seq = graph.AddInput(kLen * kDim, true);
  auto* pool = graph.Add<MeanSequencePooling>(seq, kLen, kDim);
  const std::vector<int32_t> lengths = {3, 0, 5, 1};
  pool->set_lengths(lengths.data());
  Node* in[] = {seq};
  Node* out[] = {pool->out()};
  ExpectGradientsMatch(&graph, &arena, in, {RandomValues(kBatch * kLen * kDim, 2)}, out, kBatch);

  std::vector<float> x = RandomValues(kBatch * kLen * kDim, 3);
  std::vector<float> dx(x.size(), 1.0f);
  std::vector<float> dy = RandomValues(kBatch * kDim, 4);
  graph.BindInput(seq, x.data(), dx.data());
  graph.Forward(kBatch, {});
  graph.Backward(pool->out(), dy.data());
  for (int b = 0; b < kBatch; ++b) {
    for (int l = 0; l < kLen; ++l) {
      for (int j = 0; j < kDim; ++j) {
        const float expected = l < lengths[b] ? dy[b * kDim + j] / lengths[b] : 0.0f;
        EXPECT_FLOAT_EQ(dx[(b * kLen + l) * kDim + j], expected);
      }
    }
  }
}

}  // namespace
}  // namespace ctrps::nn
