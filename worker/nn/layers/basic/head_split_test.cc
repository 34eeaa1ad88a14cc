#include "worker/nn/layers/basic/head_split.h"

#include <vector>

#include "gtest/gtest.h"
#include "worker/nn/gradient_check.h"

namespace ctrps::nn {
namespace {

TEST(HeadSplitTest, EachHeadListsTheFieldsFirstHalvesThenTheirSecondHalves) {
  // F = 2 fields of D = 8, H = 2 heads of d = 4 (halves of 2).
  ParameterArena arena(1);
  Graph graph(&arena, 1);
  Node* x = graph.AddInput(16, false);
  auto* split = graph.Add<HeadSplit>(x, 2, 2);
  std::vector<float> xv(16);
  for (int i = 0; i < 16; ++i) xv[i] = static_cast<float>(i);
  graph.BindInput(x, xv.data(), nullptr);
  graph.Forward(1, {});
  // Field 0 is 0..7 (head 0: 0 1 | 2 3, head 1: 4 5 | 6 7), field 1 is 8..15.
  const std::vector<float> want = {0, 1, 8, 9, 2, 3, 10, 11, 4, 5, 12, 13, 6, 7, 14, 15};
  EXPECT_EQ(std::vector<float>(split->out()->value(), split->out()->value() + 16), want);
}

TEST(HeadSplitTest, BackwardMatchesFiniteDifferences) {
  for (int heads : {1, 3}) {
    ParameterArena arena(1);
    Graph graph(&arena, 1);
    Node* x = graph.AddInput(3 * 6, true);
    auto* split = graph.Add<HeadSplit>(x, 3, heads);
    Node* in[] = {x};
    Node* out[] = {split->out()};
    ExpectGradientsMatch(&graph, &arena, in, {RandomValues(2 * 18, heads)}, out, 2);
  }
}

}  // namespace
}  // namespace ctrps::nn
