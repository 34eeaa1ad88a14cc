#include "worker/nn/layers/blocks/feature_selection.h"

#include <cmath>
#include <vector>

#include "gtest/gtest.h"
#include "worker/nn/gradient_check.h"

namespace ctrps::nn {
namespace {

TEST(FeatureSelectionTest, FreshLearnedContextGivesAGateOfOne) {
  // FuxiCTR: context 0, biases 0 -> 2 * sigmoid(0) = 1 everywhere.
  ParameterArena arena(1);
  Graph graph(&arena, 1);
  Node* x = graph.AddInput(6, true);
  Node* out = AddFeatureSelection(&graph, x, nullptr, 3, {4}, "fs1");
  std::vector<float> xv = RandomValues(2 * 6, 1);
  graph.BindInput(x, xv.data(), nullptr);
  graph.Forward(2, {});
  for (int i = 0; i < 12; ++i) EXPECT_FLOAT_EQ(out->value()[i], xv[i]);
  EXPECT_EQ(arena.parameters()[0].name, "fs1.ctx");
  EXPECT_EQ(arena.parameters()[0].slot.size, 3);
}

TEST(FeatureSelectionTest, GateIsTwiceSigmoidOfTheContextMlp) {
  // No hidden layer: gate = 2 * sigmoid(W ctx + b).
  ParameterArena arena(1);
  Graph graph(&arena, 1);
  Node* x = graph.AddInput(2, true);
  Node* out = AddFeatureSelection(&graph, x, nullptr, 1, {}, "fs");
  RandomizeParameters(&arena, 5);
  const auto& p = arena.parameters();  // ctx [1], weight [2 x 1], bias [2]
  const float ctx = arena.value(p[0].slot)[0];
  std::vector<float> xv = {0.5f, -1.5f};
  graph.BindInput(x, xv.data(), nullptr);
  graph.Forward(1, {});
  for (int j = 0; j < 2; ++j) {
    const double z = arena.value(p[1].slot)[j] * ctx + arena.value(p[2].slot)[j];
    EXPECT_NEAR(out->value()[j], xv[j] * 2 / (1 + std::exp(-z)), 1e-6);
  }
}

TEST(FeatureSelectionTest, LearnedContextBackwardMatchesFiniteDifferences) {
  ParameterArena arena(1);
  Graph graph(&arena, 1);
  Node* x = graph.AddInput(6, true);
  Node* out = AddFeatureSelection(&graph, x, nullptr, 3, {4}, "fs");
  RandomizeParameters(&arena, 3);
  Node* in[] = {x};
  Node* outs[] = {out};
  ExpectGradientsMatch(&graph, &arena, in, {RandomValues(4 * 6, 1)}, outs, 4);
}

TEST(FeatureSelectionTest, PerSampleContextBackwardMatchesFiniteDifferences) {
  ParameterArena arena(1);
  Graph graph(&arena, 1);
  Node* x = graph.AddInput(6, true);
  Node* ctx = graph.AddInput(2, true);
  Node* out = AddFeatureSelection(&graph, x, ctx, 2, {3}, "fs");
  RandomizeParameters(&arena, 3);
  Node* in[] = {x, ctx};
  Node* outs[] = {out};
  ExpectGradientsMatch(&graph, &arena, in, {RandomValues(4 * 6, 1), RandomValues(4 * 2, 2)}, outs,
                       4);
}

}  // namespace
}  // namespace ctrps::nn
