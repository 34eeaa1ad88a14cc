#include "worker/nn/layers/activation/relu.h"

#include <vector>

#include "gtest/gtest.h"
#include "worker/nn/gradient_check.h"

namespace ctrps::nn {
namespace {

TEST(ReluTest, ForwardClampsNegatives) {
  ParameterArena arena(1);
  Graph graph(&arena, 1);
  Node* x = graph.AddInput(4, false);
  Relu* relu = graph.Add<Relu>(x);
  std::vector<float> xv = {-1.0f, 0.0f, 2.0f, -0.5f};
  graph.BindInput(x, xv.data(), nullptr);
  graph.Forward(1, {});
  EXPECT_EQ(std::vector<float>(relu->out()->value(), relu->out()->value() + 4),
            (std::vector<float>{0.0f, 0.0f, 2.0f, 0.0f}));
}

TEST(ReluTest, BackwardMatchesFiniteDifferences) {
  ParameterArena arena(1);
  Graph graph(&arena, 1);
  Node* x = graph.AddInput(5, true);
  Relu* relu = graph.Add<Relu>(x);
  Node* in[] = {x};
  Node* out[] = {relu->out()};
  ExpectGradientsMatch(&graph, &arena, in, {RandomValues(4 * 5, 2)}, out, 4);
}

}  // namespace
}  // namespace ctrps::nn
