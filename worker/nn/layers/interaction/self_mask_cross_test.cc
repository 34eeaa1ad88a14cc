#include "worker/nn/layers/interaction/self_mask_cross.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "gtest/gtest.h"
#include "worker/nn/gradient_check.h"

namespace ctrps::nn {
namespace {

TEST(SelfMaskCrossTest, ForwardMatchesTheFormulaPerHead) {
  constexpr int kRows = 2, kHeads = 2, kD = 4, kHalf = 2;
  for (bool layer_norm : {false, true}) {
    SCOPED_TRACE(layer_norm);
    ParameterArena arena(1);
    Graph graph(&arena, 1);
    Node* x0 = graph.AddInput(kHeads * kD, false);
    Node* x = graph.AddInput(kHeads * kD, false);
    auto* cross = graph.Add<SelfMaskCross>(x0, x, kHeads, layer_norm);
    RandomizeParameters(&arena, 4);
    const auto& params = arena.parameters();
    const float* w = arena.value(params[0].slot);
    const float* b = arena.value(params[1].slot);
    const float* gamma = layer_norm ? arena.value(params[2].slot) : nullptr;
    const float* beta = layer_norm ? arena.value(params[3].slot) : nullptr;
    std::vector<float> x0v = RandomValues(kRows * kHeads * kD, 1);
    std::vector<float> xv = RandomValues(kRows * kHeads * kD, 2);
    graph.BindInput(x0, x0v.data(), nullptr);
    graph.BindInput(x, xv.data(), nullptr);
    graph.Forward(kRows, {});
    for (int r = 0; r < kRows * kHeads; ++r) {
      const float* xr = xv.data() + r * kD;
      const float* x0r = x0v.data() + r * kD;
      double h[kHalf], m[kHalf];
      for (int j = 0; j < kHalf; ++j) {
        h[j] = 0;
        for (int k = 0; k < kD; ++k) h[j] += double{w[j * kD + k]} * xr[k];
      }
      const double mean = (h[0] + h[1]) / 2;
      const double var = ((h[0] - mean) * (h[0] - mean) + (h[1] - mean) * (h[1] - mean)) / 2;
      for (int j = 0; j < kHalf; ++j) {
        const double pre =
            layer_norm ? gamma[j] * (h[j] - mean) / std::sqrt(var + 1e-5) + beta[j] : h[j];
        m[j] = std::max(pre, 0.0);
      }
      for (int j = 0; j < kD; ++j) {
        const double c = (j < kHalf ? h[j] : h[j - kHalf] * m[j - kHalf]) + b[j];
        EXPECT_NEAR(cross->out()->value()[r * kD + j], x0r[j] * c + xr[j], 1e-4) << r << " " << j;
      }
    }
  }
}

TEST(SelfMaskCrossTest, BiasStartsUniformInZeroOne) {
  ParameterArena arena(1);
  Graph graph(&arena, 1);
  Node* x = graph.AddInput(64, false);
  graph.Add<SelfMaskCross>(x, x, 1, false);
  const ParamInfo& b = arena.parameters()[1];
  ASSERT_EQ(b.slot.size, 64);
  const float* v = arena.value(b.slot);
  EXPECT_GE(*std::min_element(v, v + 64), 0.0f);
  EXPECT_LT(*std::max_element(v, v + 64), 1.0f);
  EXPECT_GT(*std::max_element(v, v + 64) - *std::min_element(v, v + 64), 0.5f);
}

TEST(SelfMaskCrossTest, BackwardMatchesFiniteDifferences) {
  for (bool layer_norm : {false, true}) {
    for (int heads : {1, 3}) {
      SCOPED_TRACE(testing::Message() << "layer_norm " << layer_norm << " heads " << heads);
      // Linear (x0 and x distinct) and exponential (x0 == x), stacked twice so
      // the second layer's inputs are computed nodes.
      ParameterArena arena(1);
      Graph graph(&arena, 1);
      Node* x0 = graph.AddInput(heads * 6, true);
      Node* lin = graph.Add<SelfMaskCross>(x0, x0, heads, layer_norm, "c0")->out();
      Node* lin2 = graph.Add<SelfMaskCross>(x0, lin, heads, layer_norm, "c1")->out();
      Node* exp = graph.Add<SelfMaskCross>(lin2, lin2, heads, layer_norm, "c2")->out();
      RandomizeParameters(&arena, 6);
      Node* in[] = {x0};
      Node* out[] = {exp};
      ExpectGradientsMatch(&graph, &arena, in, {RandomValues(3 * heads * 6, heads)}, out, 3);
    }
  }
}

TEST(SelfMaskCrossTest, BatchNormBackwardMatchesFiniteDifferencesInTrainingAndEvaluation) {
  for (bool training : {true, false}) {
    for (bool layer_norm : {false, true}) {
      for (int heads : {1, 2}) {
        SCOPED_TRACE(testing::Message() << "training " << training << " layer_norm " << layer_norm
                                        << " heads " << heads);
        ParameterArena arena(1);
        Graph graph(&arena, 1);
        Node* x0 = graph.AddInput(heads * 6, true);
        Node* a = graph.Add<SelfMaskCross>(x0, x0, heads, layer_norm, "c0", true)->out();
        Node* b = graph.Add<SelfMaskCross>(x0, a, heads, layer_norm, "c1", true)->out();
        RandomizeParameters(&arena, 6);
        // Running statistics away from (0, 1), as a training forward leaves them.
        for (const ParamInfo& p : arena.buffer_infos()) {
          float* v = arena.buffer(p.slot);
          for (int64_t i = 0; i < p.slot.size; ++i) v[i] = 0.3f + 0.2f * static_cast<float>(i);
        }
        Node* in[] = {x0};
        Node* out[] = {b};
        GradCheckOptions options;
        options.training = training;
        ExpectGradientsMatch(&graph, &arena, in, {RandomValues(5 * heads * 6, heads + 7)}, out, 5,
                             options);
      }
    }
  }
}

TEST(SelfMaskCrossTest, BatchNormStandardisesEachHeadOverTheBatch) {
  // x0 = 1 and b = 0: out - x = c, whose first half is the batch-normalised
  // h; in training it has mean 0 and variance 1 per head over rows and values.
  constexpr int kRows = 8, kHeads = 2, kD = 6, kHalf = 3;
  ParameterArena arena(1);
  Graph graph(&arena, 1);
  Node* x0 = graph.AddInput(kHeads * kD, false);
  Node* x = graph.AddInput(kHeads * kD, false);
  auto* cross = graph.Add<SelfMaskCross>(x0, x, kHeads, false, "c", true);
  std::fill_n(arena.value(arena.parameters()[1].slot), kD, 0.0f);
  std::vector<float> ones(kRows * kHeads * kD, 1.0f);
  std::vector<float> xv = RandomValues(kRows * kHeads * kD, 4);
  for (int r = 0; r < kRows; ++r) xv[r * kHeads * kD + kD] += 3.0f;  // head 1 shifted
  graph.BindInput(x0, ones.data(), nullptr);
  graph.BindInput(x, xv.data(), nullptr);
  graph.Forward(kRows, {true, 0});
  for (int h = 0; h < kHeads; ++h) {
    double sum = 0, sum2 = 0;
    for (int r = 0; r < kRows; ++r) {
      for (int j = 0; j < kHalf; ++j) {
        const int i = (r * kHeads + h) * kD + j;
        const double c = cross->out()->value()[i] - xv[i];
        sum += c;
        sum2 += c * c;
      }
    }
    EXPECT_NEAR(sum / (kRows * kHalf), 0.0, 1e-4) << h;
    EXPECT_NEAR(sum2 / (kRows * kHalf), 1.0, 1e-3) << h;
  }
}

}  // namespace
}  // namespace ctrps::nn
