#include "worker/nn/layers/interaction/bilinear_fusion.h"

#include <vector>

#include "gtest/gtest.h"
#include "worker/nn/gradient_check.h"

namespace ctrps::nn {
namespace {

TEST(BilinearFusionTest, ForwardMatchesPerHeadFormula) {
  constexpr int kRows = 3, kDx = 4, kDy = 6, kHeads = 2;
  constexpr int kHx = kDx / kHeads, kHy = kDy / kHeads;
  ParameterArena arena(1);
  Graph graph(&arena, 1);
  Node* x = graph.AddInput(kDx, false);
  Node* y = graph.AddInput(kDy, false);
  BilinearFusion* fusion = graph.Add<BilinearFusion>(x, y, kHeads);
  RandomizeParameters(&arena, 4);
  std::vector<float> xv = RandomValues(kRows * kDx, 1), yv = RandomValues(kRows * kDy, 2);
  graph.BindInput(x, xv.data(), nullptr);
  graph.BindInput(y, yv.data(), nullptr);
  graph.Forward(kRows, {});
  const auto& p = arena.parameters();  // w_x, w_y, bias, w_xy
  const float* w_x = arena.value(p[0].slot);
  const float* w_y = arena.value(p[1].slot);
  const float bias = arena.value(p[2].slot)[0];
  const float* w_xy = arena.value(p[3].slot);
  for (int r = 0; r < kRows; ++r) {
    const float* xr = xv.data() + r * kDx;
    const float* yr = yv.data() + r * kDy;
    double ref = bias;
    for (int j = 0; j < kDx; ++j) ref += double{w_x[j]} * xr[j];
    for (int j = 0; j < kDy; ++j) ref += double{w_y[j]} * yr[j];
    for (int h = 0; h < kHeads; ++h) {
      for (int i = 0; i < kHx; ++i) {
        for (int j = 0; j < kHy; ++j) {
          ref += double{xr[h * kHx + i]} * w_xy[(h * kHx + i) * kHy + j] * yr[h * kHy + j];
        }
      }
    }
    EXPECT_NEAR(fusion->out()->value()[r], ref, 1e-5);
  }
}

TEST(BilinearFusionTest, BackwardMatchesFiniteDifferences) {
  for (int heads : {1, 2}) {
    ParameterArena arena(1);
    Graph graph(&arena, 1);
    Node* x = graph.AddInput(4, true);
    Node* y = graph.AddInput(6, true);
    BilinearFusion* fusion = graph.Add<BilinearFusion>(x, y, heads);
    RandomizeParameters(&arena, 4);
    Node* in[] = {x, y};
    Node* out[] = {fusion->out()};
    ExpectGradientsMatch(&graph, &arena, in, {RandomValues(12, 1), RandomValues(18, 2)}, out, 3);
  }
}

}  // namespace
}  // namespace ctrps::nn
