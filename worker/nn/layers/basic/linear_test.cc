#include "worker/nn/layers/basic/linear.h"

#include <cmath>
#include <vector>

#include "gtest/gtest.h"
#include "worker/nn/gradient_check.h"

namespace ctrps::nn {
namespace {

TEST(LinearTest, ForwardMatchesNaiveReference) {
  constexpr int kBatch = 5, kIn = 7, kOut = 3;
  ParameterArena arena(11);
  Graph graph(&arena, 1);
  Node* x = graph.AddInput(kIn, false);
  Linear* fc = graph.Add<Linear>(x, kOut);
  RandomizeParameters(&arena, 2);
  std::vector<float> xv = RandomValues(kBatch * kIn, 3);
  graph.BindInput(x, xv.data(), nullptr);
  graph.Forward(kBatch, {});
  const float* w = arena.value(fc->weight());
  const float* b = arena.value(fc->bias());
  for (int r = 0; r < kBatch; ++r) {
    for (int o = 0; o < kOut; ++o) {
      double ref = b[o];
      for (int i = 0; i < kIn; ++i) ref += double{xv[r * kIn + i]} * w[o * kIn + i];
      EXPECT_NEAR(fc->out()->value()[r * kOut + o], ref, 1e-5);
    }
  }
  EXPECT_EQ(fc->FlopsPerSample(), 2 * kIn * kOut);
}

TEST(LinearTest, InitIsXavierUniformWithZeroBias) {
  ParameterArena arena(11);
  Graph graph(&arena, 1);
  Node* x = graph.AddInput(40, false);
  Linear* fc = graph.Add<Linear>(x, 60);
  const float bound = std::sqrt(6.0f / 100.0f);
  float max_abs = 0;
  for (int i = 0; i < 2400; ++i)
    max_abs = std::max(max_abs, std::fabs(arena.value(fc->weight())[i]));
  EXPECT_LE(max_abs, bound);
  EXPECT_GT(max_abs, 0.9f * bound);
  for (int i = 0; i < 60; ++i) EXPECT_EQ(arena.value(fc->bias())[i], 0.0f);
}

TEST(LinearTest, BackwardMatchesFiniteDifferences) {
  ParameterArena arena(5);
  Graph graph(&arena, 1);
  Node* x = graph.AddInput(6, true);
  Linear* fc = graph.Add<Linear>(x, 4);
  Node* in[] = {x};
  Node* out[] = {fc->out()};
  ExpectGradientsMatch(&graph, &arena, in, {RandomValues(3 * 6, 9)}, out, 3);
}

TEST(LinearTest, BackwardWithoutBiasMatchesFiniteDifferences) {
  ParameterArena arena(5);
  Graph graph(&arena, 1);
  Node* x = graph.AddInput(5, true);
  Linear* fc = graph.Add<Linear>(x, 1, /*use_bias=*/false);
  EXPECT_EQ(fc->bias().size, 0);
  Node* in[] = {x};
  Node* out[] = {fc->out()};
  ExpectGradientsMatch(&graph, &arena, in, {RandomValues(4 * 5, 9)}, out, 4);
}

}  // namespace
}  // namespace ctrps::nn
