#include "worker/nn/layers/interaction/cross_net.h"

#include <vector>

#include "gtest/gtest.h"
#include "worker/nn/gradient_check.h"

namespace ctrps::nn {
namespace {

TEST(CrossNetTest, ForwardMatchesTheRecurrence) {
  constexpr int kRows = 2, kWidth = 4, kLayers = 2;
  ParameterArena arena(1);
  Graph graph(&arena, 1);
  Node* x = graph.AddInput(kWidth, false);
  CrossNet* cross = graph.Add<CrossNet>(x, kLayers);
  RandomizeParameters(&arena, 5);
  std::vector<float> xv = RandomValues(kRows * kWidth, 3);
  graph.BindInput(x, xv.data(), nullptr);
  graph.Forward(kRows, {});
  for (int r = 0; r < kRows; ++r) {
    std::vector<double> x0(xv.begin() + r * kWidth, xv.begin() + (r + 1) * kWidth), xl = x0;
    for (int l = 0; l < kLayers; ++l) {
      const float* w = arena.value(cross->weight(l));
      const float* b = arena.value(cross->bias(l));
      double s = 0;
      for (int j = 0; j < kWidth; ++j) s += xl[j] * w[j];
      for (int j = 0; j < kWidth; ++j) xl[j] = x0[j] * s + b[j] + xl[j];
    }
    for (int j = 0; j < kWidth; ++j) {
      EXPECT_NEAR(cross->out()->value()[r * kWidth + j], xl[j], 1e-5);
    }
  }
}

TEST(CrossNetTest, BackwardMatchesFiniteDifferences) {
  for (int layers : {0, 1, 3}) {
    ParameterArena arena(1);
    Graph graph(&arena, 1);
    Node* x = graph.AddInput(5, true);
    CrossNet* cross = graph.Add<CrossNet>(x, layers);
    RandomizeParameters(&arena, 5);
    Node* in[] = {x};
    Node* out[] = {cross->out()};
    ExpectGradientsMatch(&graph, &arena, in, {RandomValues(3 * 5, 1)}, out, 3);
  }
}

}  // namespace
}  // namespace ctrps::nn
