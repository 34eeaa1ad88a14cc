#include "worker/nn/layers/interaction/cross_net_v2.h"

#include <vector>

#include "gtest/gtest.h"
#include "worker/nn/gradient_check.h"

namespace ctrps::nn {
namespace {

// x_{l+1} = x0 * (W x_l + b) + x_l with W read from the arena in
// registration order (full: W; low rank: U [d, r] then V [r, d]).
std::vector<double> Reference(ParameterArena& arena, const float* x, int d, int layers, int rank) {
  std::vector<double> x0(x, x + d), xl = x0;
  for (int l = 0; l < layers; ++l) {
    const int per_layer = rank == 0 ? 2 : 3;
    std::vector<double> z(d, 0.0);
    if (rank == 0) {
      const float* w = arena.value(arena.parameters()[l * per_layer].slot);
      for (int i = 0; i < d; ++i)
        for (int j = 0; j < d; ++j) z[i] += w[i * d + j] * xl[j];
    } else {
      const float* u = arena.value(arena.parameters()[l * per_layer].slot);
      const float* v = arena.value(arena.parameters()[l * per_layer + 1].slot);
      std::vector<double> h(rank, 0.0);
      for (int k = 0; k < rank; ++k)
        for (int j = 0; j < d; ++j) h[k] += v[k * d + j] * xl[j];
      for (int i = 0; i < d; ++i)
        for (int k = 0; k < rank; ++k) z[i] += u[i * rank + k] * h[k];
    }
    const float* b = arena.value(arena.parameters()[l * per_layer + per_layer - 1].slot);
    for (int i = 0; i < d; ++i) xl[i] = x0[i] * (z[i] + b[i]) + xl[i];
  }
  return xl;
}

TEST(CrossNetV2Test, ForwardMatchesTheRecurrence) {
  constexpr int kRows = 3, kWidth = 6, kLayers = 2;
  for (int rank : {0, 2}) {
    ParameterArena arena(1);
    Graph graph(&arena, 1);
    Node* x = graph.AddInput(kWidth, false);
    CrossNetV2* cross = graph.Add<CrossNetV2>(x, kLayers, rank);
    RandomizeParameters(&arena, 5);
    std::vector<float> xv = RandomValues(kRows * kWidth, 3);
    graph.BindInput(x, xv.data(), nullptr);
    graph.Forward(kRows, {});
    for (int r = 0; r < kRows; ++r) {
      const std::vector<double> ref =
          Reference(arena, xv.data() + r * kWidth, kWidth, kLayers, rank);
      for (int j = 0; j < kWidth; ++j) {
        EXPECT_NEAR(cross->out()->value()[r * kWidth + j], ref[j], 1e-5) << "rank " << rank;
      }
    }
    EXPECT_EQ(cross->FlopsPerSample(),
              rank == 0 ? kLayers * 2 * kWidth * kWidth : kLayers * 4 * kWidth * rank);
  }
}

TEST(CrossNetV2Test, FullRankBackwardMatchesFiniteDifferences) {
  ParameterArena arena(1);
  Graph graph(&arena, 1);
  Node* x = graph.AddInput(4, true);
  CrossNetV2* cross = graph.Add<CrossNetV2>(x, 3, 0);
  RandomizeParameters(&arena, 5);
  Node* in[] = {x};
  Node* out[] = {cross->out()};
  ExpectGradientsMatch(&graph, &arena, in, {RandomValues(3 * 4, 1)}, out, 3);
}

TEST(CrossNetV2Test, LowRankBackwardMatchesFiniteDifferences) {
  ParameterArena arena(1);
  Graph graph(&arena, 1);
  Node* x = graph.AddInput(5, true);
  CrossNetV2* cross = graph.Add<CrossNetV2>(x, 2, 2);
  RandomizeParameters(&arena, 5);
  Node* in[] = {x};
  Node* out[] = {cross->out()};
  ExpectGradientsMatch(&graph, &arena, in, {RandomValues(3 * 5, 1)}, out, 3);
}

}  // namespace
}  // namespace ctrps::nn
