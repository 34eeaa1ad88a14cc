#include "worker/nn/layers/basic/add.h"

#include <vector>

#include "gtest/gtest.h"
#include "worker/nn/gradient_check.h"

namespace ctrps::nn {
namespace {

TEST(AddTest, ForwardSums) {
  ParameterArena arena(1);
  Graph graph(&arena, 1);
  Node* a = graph.AddInput(2, false);
  Node* b = graph.AddInput(2, false);
  Add* add = graph.Add<Add>(std::vector<Node*>{a, b, b});
  std::vector<float> av = {1, 2}, bv = {10, 20};
  graph.BindInput(a, av.data(), nullptr);
  graph.BindInput(b, bv.data(), nullptr);
  graph.Forward(1, {});
  EXPECT_EQ(add->out()->value()[0], 21.0f);
  EXPECT_EQ(add->out()->value()[1], 42.0f);
}

TEST(AddTest, BackwardMatchesFiniteDifferences) {
  ParameterArena arena(1);
  Graph graph(&arena, 1);
  Node* a = graph.AddInput(3, true);
  Node* b = graph.AddInput(3, true);
  Add* add = graph.Add<Add>(std::vector<Node*>{a, b, a});
  Node* in[] = {a, b};
  Node* out[] = {add->out()};
  ExpectGradientsMatch(&graph, &arena, in, {RandomValues(6, 1), RandomValues(6, 2)}, out, 2);
}

TEST(AddTest, ScaleMultipliesTheSumAndItsGradient) {
  ParameterArena arena(1);
  Graph graph(&arena, 1);
  Node* a = graph.AddInput(2, true);
  Node* b = graph.AddInput(2, true);
  Add* add = graph.Add<Add>(std::vector<Node*>{a, b}, 0.5f);
  std::vector<float> av = {1, 2}, bv = {10, 20};
  graph.BindInput(a, av.data(), nullptr);
  graph.BindInput(b, bv.data(), nullptr);
  graph.Forward(1, {});
  EXPECT_EQ(add->out()->value()[0], 5.5f);
  EXPECT_EQ(add->out()->value()[1], 11.0f);
  Node* in[] = {a, b};
  Node* out[] = {add->out()};
  ExpectGradientsMatch(&graph, &arena, in, {RandomValues(6, 1), RandomValues(6, 2)}, out, 3);
}

}  // namespace
}  // namespace ctrps::nn
