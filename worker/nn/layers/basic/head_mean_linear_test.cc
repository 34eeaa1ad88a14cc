#include "worker/nn/layers/basic/head_mean_linear.h"

#include <vector>

#include "gtest/gtest.h"
#include "worker/nn/gradient_check.h"

namespace ctrps::nn {
namespace {

TEST(HeadMeanLinearTest, ForwardAveragesTheSharedLinearOverHeads) {
  ParameterArena arena(1);
  Graph graph(&arena, 1);
  Node* x = graph.AddInput(6, false);
  auto* lin = graph.Add<HeadMeanLinear>(x, 2);  // 2 heads of 3
  const auto& params = arena.parameters();
  ASSERT_EQ(params.size(), 2u);
  float* w = arena.value(params[0].slot);
  w[0] = 1.0f, w[1] = 2.0f, w[2] = -1.0f;
  arena.value(params[1].slot)[0] = 0.5f;
  std::vector<float> xv = {1, 1, 1, 2, 0, 4};  // heads: 1 + 2 - 1 = 2, 2 + 0 - 4 = -2
  graph.BindInput(x, xv.data(), nullptr);
  graph.Forward(1, {});
  EXPECT_FLOAT_EQ(lin->out()->value()[0], 0.5f);
  EXPECT_EQ(lin->FlopsPerSample(), 12);
}

TEST(HeadMeanLinearTest, BackwardMatchesFiniteDifferences) {
  for (int heads : {1, 4}) {
    ParameterArena arena(1);
    Graph graph(&arena, 1);
    Node* x = graph.AddInput(heads * 5, true);
    auto* lin = graph.Add<HeadMeanLinear>(x, heads);
    RandomizeParameters(&arena, 3);
    Node* in[] = {x};
    Node* out[] = {lin->out()};
    ExpectGradientsMatch(&graph, &arena, in, {RandomValues(3 * heads * 5, heads)}, out, 3);
  }
}

}  // namespace
}  // namespace ctrps::nn
