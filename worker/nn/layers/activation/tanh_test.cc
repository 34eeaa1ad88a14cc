#include "worker/nn/layers/activation/tanh.h"

#include <cmath>
#include <vector>

#include "gtest/gtest.h"
#include "worker/nn/gradient_check.h"

namespace ctrps::nn {
namespace {

TEST(TanhTest, ForwardIsHyperbolicTangent) {
  ParameterArena arena(1);
  Graph graph(&arena, 1);
  Node* x = graph.AddInput(3, false);
  Tanh* t = graph.Add<Tanh>(x);
  std::vector<float> xv = {0.0f, 0.5f, -100.0f};
  graph.BindInput(x, xv.data(), nullptr);
  graph.Forward(1, {});
  EXPECT_FLOAT_EQ(t->out()->value()[0], 0.0f);
  EXPECT_FLOAT_EQ(t->out()->value()[1], std::tanh(0.5f));
  EXPECT_FLOAT_EQ(t->out()->value()[2], -1.0f);
}

TEST(TanhTest, BackwardMatchesFiniteDifferences) {
  ParameterArena arena(1);
  Graph graph(&arena, 1);
  Node* x = graph.AddInput(5, true);
  Tanh* t = graph.Add<Tanh>(x);
  Node* in[] = {x};
  Node* out[] = {t->out()};
  ExpectGradientsMatch(&graph, &arena, in, {RandomValues(3 * 5, 2, -2, 2)}, out, 3);
}

}  // namespace
}  // namespace ctrps::nn
