#include "worker/nn/layers/activation/sigmoid.h"

#include <cmath>
#include <vector>

#include "gtest/gtest.h"
#include "worker/nn/gradient_check.h"

namespace ctrps::nn {
namespace {

TEST(SigmoidTest, ForwardIsScaledLogistic) {
  ParameterArena arena(1);
  Graph graph(&arena, 1);
  Node* x = graph.AddInput(3, false);
  Sigmoid* s = graph.Add<Sigmoid>(x, 2.0f);
  std::vector<float> xv = {0.0f, 1.0f, -100.0f};
  graph.BindInput(x, xv.data(), nullptr);
  graph.Forward(1, {});
  EXPECT_FLOAT_EQ(s->out()->value()[0], 1.0f);
  EXPECT_FLOAT_EQ(s->out()->value()[1], 2.0f / (1.0f + std::exp(-1.0f)));
  EXPECT_FLOAT_EQ(s->out()->value()[2], 0.0f);
}

TEST(SigmoidTest, BackwardMatchesFiniteDifferences) {
  for (float scale : {1.0f, 2.0f}) {
    ParameterArena arena(1);
    Graph graph(&arena, 1);
    Node* x = graph.AddInput(5, true);
    Sigmoid* s = graph.Add<Sigmoid>(x, scale);
    Node* in[] = {x};
    Node* out[] = {s->out()};
    ExpectGradientsMatch(&graph, &arena, in, {RandomValues(3 * 5, 2, -3, 3)}, out, 3);
  }
}

}  // namespace
}  // namespace ctrps::nn
