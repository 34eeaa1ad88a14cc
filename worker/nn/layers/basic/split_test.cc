#include "worker/nn/layers/basic/split.h"

#include <vector>

#include "gtest/gtest.h"
#include "worker/nn/gradient_check.h"

namespace ctrps::nn {
namespace {

TEST(SplitTest, ForwardCutsColumns) {
  ParameterArena arena(1);
  Graph graph(&arena, 1);
  Node* x = graph.AddInput(3, false);
  Split* split = graph.Add<Split>(x, std::vector<int64_t>{1, 2});
  std::vector<float> xv = {1, 2, 3, 4, 5, 6};
  graph.BindInput(x, xv.data(), nullptr);
  graph.Forward(2, {});
  EXPECT_EQ(std::vector<float>(split->out(0)->value(), split->out(0)->value() + 2),
            (std::vector<float>{1, 4}));
  EXPECT_EQ(std::vector<float>(split->out(1)->value(), split->out(1)->value() + 4),
            (std::vector<float>{2, 3, 5, 6}));
}

TEST(SplitTest, BackwardMatchesFiniteDifferences) {
  ParameterArena arena(1);
  Graph graph(&arena, 1);
  Node* x = graph.AddInput(5, true);
  Split* split = graph.Add<Split>(x, std::vector<int64_t>{2, 3});
  Node* in[] = {x};
  Node* out[] = {split->out(0), split->out(1)};
  ExpectGradientsMatch(&graph, &arena, in, {RandomValues(15, 1)}, out, 3);
}

TEST(SplitTest, AnUnusedOutputGivesNoGradient) {
  ParameterArena arena(1);
  Graph graph(&arena, 1);
  Node* x = graph.AddInput(4, true);
  Split* split = graph.Add<Split>(x, std::vector<int64_t>{1, 3});
  Node* in[] = {x};
  Node* out[] = {split->out(1)};
  ExpectGradientsMatch(&graph, &arena, in, {RandomValues(8, 1)}, out, 2);
}

}  // namespace
}  // namespace ctrps::nn
