#include "worker/nn/layers/activation/prelu.h"

#include <vector>

#include "gtest/gtest.h"
#include "worker/nn/gradient_check.h"

namespace ctrps::nn {
namespace {

TEST(PreluTest, NegativesAreScaledByTheInitialSlope) {
  ParameterArena arena(1);
  Graph graph(&arena, 1);
  Node* x = graph.AddInput(2, false);
  Prelu* prelu = graph.Add<Prelu>(x);
  std::vector<float> xv = {-2.0f, 3.0f};
  graph.BindInput(x, xv.data(), nullptr);
  graph.Forward(1, {});
  EXPECT_FLOAT_EQ(prelu->out()->value()[0], -0.2f);
  EXPECT_FLOAT_EQ(prelu->out()->value()[1], 3.0f);
}

TEST(PreluTest, BackwardMatchesFiniteDifferences) {
  ParameterArena arena(1);
  Graph graph(&arena, 1);
  Node* x = graph.AddInput(6, true);
  Prelu* prelu = graph.Add<Prelu>(x);
  RandomizeParameters(&arena, 3);
  Node* in[] = {x};
  Node* out[] = {prelu->out()};
  ExpectGradientsMatch(&graph, &arena, in, {RandomValues(5 * 6, 2)}, out, 5);
}

}  // namespace
}  // namespace ctrps::nn
