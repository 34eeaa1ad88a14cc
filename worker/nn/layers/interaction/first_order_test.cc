#include "worker/nn/layers/interaction/first_order.h"

#include <vector>

#include "gtest/gtest.h"
#include "worker/nn/gradient_check.h"

namespace ctrps::nn {
namespace {

TEST(FirstOrderTest, ForwardSumsFieldsPlusBias) {
  ParameterArena arena(1);
  Graph graph(&arena, 1);
  Node* x = graph.AddInput(3, false);
  FirstOrder* lr = graph.Add<FirstOrder>(x);
  arena.value(lr->bias())[0] = 0.5f;
  std::vector<float> xv = {1, 2, 3, -1, -2, -3};
  graph.BindInput(x, xv.data(), nullptr);
  graph.Forward(2, {});
  EXPECT_FLOAT_EQ(lr->out()->value()[0], 6.5f);
  EXPECT_FLOAT_EQ(lr->out()->value()[1], -5.5f);
}

TEST(FirstOrderTest, BackwardMatchesFiniteDifferences) {
  ParameterArena arena(1);
  Graph graph(&arena, 1);
  Node* x = graph.AddInput(4, true);
  FirstOrder* lr = graph.Add<FirstOrder>(x);
  Node* in[] = {x};
  Node* out[] = {lr->out()};
  ExpectGradientsMatch(&graph, &arena, in, {RandomValues(12, 1)}, out, 3);
}

TEST(FirstOrderTest, WithoutBiasHasNoParameters) {
  ParameterArena arena(1);
  Graph graph(&arena, 1);
  Node* x = graph.AddInput(2, true);
  FirstOrder* lr = graph.Add<FirstOrder>(x, /*use_bias=*/false);
  EXPECT_EQ(arena.num_parameters(), 0);
  std::vector<float> xv = {1, 2};
  graph.BindInput(x, xv.data(), nullptr);
  graph.Forward(1, {});
  EXPECT_FLOAT_EQ(lr->out()->value()[0], 3.0f);
}

}  // namespace
}  // namespace ctrps::nn
