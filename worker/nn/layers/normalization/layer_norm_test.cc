#include "worker/nn/layers/normalization/layer_norm.h"

#include <cmath>
#include <vector>

#include "gtest/gtest.h"
#include "worker/nn/gradient_check.h"

namespace ctrps::nn {
namespace {

TEST(LayerNormTest, RowsHaveZeroMeanAndUnitVariance) {
  ParameterArena arena(1);
  Graph graph(&arena, 1);
  Node* x = graph.AddInput(6, false);
  LayerNorm* ln = graph.Add<LayerNorm>(x);
  std::vector<float> xv = RandomValues(3 * 6, 4, -3, 3);
  graph.BindInput(x, xv.data(), nullptr);
  graph.Forward(3, {});
  for (int r = 0; r < 3; ++r) {
    double mean = 0, sq = 0;
    for (int j = 0; j < 6; ++j) mean += ln->out()->value()[r * 6 + j];
    for (int j = 0; j < 6; ++j) sq += std::pow(ln->out()->value()[r * 6 + j], 2);
    EXPECT_NEAR(mean / 6, 0.0, 1e-5);
    EXPECT_NEAR(sq / 6, 1.0, 1e-3);
  }
}

TEST(LayerNormTest, BackwardMatchesFiniteDifferences) {
  ParameterArena arena(1);
  Graph graph(&arena, 1);
  Node* x = graph.AddInput(5, true);
  LayerNorm* ln = graph.Add<LayerNorm>(x);
  RandomizeParameters(&arena, 3, 1.0f);
  Node* in[] = {x};
  Node* out[] = {ln->out()};
  ExpectGradientsMatch(&graph, &arena, in, {RandomValues(3 * 5, 2)}, out, 3);
}

}  // namespace
}  // namespace ctrps::nn
