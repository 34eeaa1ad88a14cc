#include "worker/nn/layers/basic/concat.h"

#include <vector>

#include "gtest/gtest.h"
#include "worker/nn/gradient_check.h"

namespace ctrps::nn {
namespace {

TEST(ConcatTest, ForwardJoinsColumns) {
  ParameterArena arena(1);
  Graph graph(&arena, 1);
  Node* a = graph.AddInput(2, false);
  Node* b = graph.AddInput(1, false);
  Concat* cat = graph.Add<Concat>(std::vector<Node*>{a, b});
  std::vector<float> av = {1, 2, 3, 4}, bv = {5, 6};
  graph.BindInput(a, av.data(), nullptr);
  graph.BindInput(b, bv.data(), nullptr);
  graph.Forward(2, {});
  EXPECT_EQ(std::vector<float>(cat->out()->value(), cat->out()->value() + 6),
            (std::vector<float>{1, 2, 5, 3, 4, 6}));
}

TEST(ConcatTest, BackwardMatchesFiniteDifferences) {
  ParameterArena arena(1);
  Graph graph(&arena, 1);
  Node* a = graph.AddInput(3, true);
  Node* b = graph.AddInput(2, true);
  Concat* cat = graph.Add<Concat>(std::vector<Node*>{a, b, a});
  Node* in[] = {a, b};
  Node* out[] = {cat->out()};
  ExpectGradientsMatch(&graph, &arena, in, {RandomValues(9, 1), RandomValues(6, 2)}, out, 3);
}

}  // namespace
}  // namespace ctrps::nn
