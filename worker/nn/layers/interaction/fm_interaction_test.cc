#include "worker/nn/layers/interaction/fm_interaction.h"

#include <vector>

#include "gtest/gtest.h"
#include "worker/nn/gradient_check.h"

namespace ctrps::nn {
namespace {

TEST(FmInteractionTest, ForwardEqualsSumOfPairwiseInnerProducts) {
  constexpr int kRows = 3, kFields = 4, kDim = 5;
  ParameterArena arena(1);
  Graph graph(&arena, 1);
  Node* x = graph.AddInput(kFields * kDim, false);
  FmInteraction* fm = graph.Add<FmInteraction>(x, kFields, kDim);
  std::vector<float> xv = RandomValues(kRows * kFields * kDim, 3);
  graph.BindInput(x, xv.data(), nullptr);
  graph.Forward(kRows, {});
  for (int r = 0; r < kRows; ++r) {
    double ref = 0;
    for (int i = 0; i < kFields; ++i) {
      for (int j = i + 1; j < kFields; ++j) {
        for (int k = 0; k < kDim; ++k) {
          ref += double{xv[(r * kFields + i) * kDim + k]} * xv[(r * kFields + j) * kDim + k];
        }
      }
    }
    EXPECT_NEAR(fm->out()->value()[r], ref, 1e-5);
  }
}

TEST(FmInteractionTest, BackwardMatchesFiniteDifferences) {
  ParameterArena arena(1);
  Graph graph(&arena, 1);
  Node* x = graph.AddInput(3 * 4, true);
  FmInteraction* fm = graph.Add<FmInteraction>(x, 3, 4);
  Node* in[] = {x};
  Node* out[] = {fm->out()};
  ExpectGradientsMatch(&graph, &arena, in, {RandomValues(2 * 12, 1)}, out, 2);
}

}  // namespace
}  // namespace ctrps::nn
