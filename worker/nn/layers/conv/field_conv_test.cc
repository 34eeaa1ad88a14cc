#include "worker/nn/layers/conv/field_conv.h"

#include <cmath>
#include <vector>

#include "gtest/gtest.h"
#include "worker/nn/gradient_check.h"

namespace ctrps::nn {
namespace {

// H = 5 rows, D = 2 columns, 2 input and 3 output channels, kernel 3.
constexpr int64_t kH = 5, kD = 2, kCin = 2, kCout = 3, kK = 3;

TEST(FieldConvTest, ForwardMatchesTheDirectSum) {
  ParameterArena arena(7);
  Graph graph(&arena, 1);
  Node* x = graph.AddInput(kH * kD * kCin, false);
  FieldConv* conv = graph.Add<FieldConv>(x, kH, kD, kCin, kCout, kK, "conv");
  RandomizeParameters(&arena, 3);
  const int batch = 2;
  std::vector<float> xv = RandomValues(batch * kH * kD * kCin, 1);
  graph.BindInput(x, xv.data(), nullptr);
  graph.Forward(batch, {});
  const ParamInfo& w = arena.parameters()[0];
  const ParamInfo& bias = arena.parameters()[1];
  const float* W = arena.value(w.slot);
  for (int b = 0; b < batch; ++b) {
    for (int64_t h = 0; h < kH; ++h) {
      for (int64_t d = 0; d < kD; ++d) {
        for (int64_t o = 0; o < kCout; ++o) {
          double want = arena.value(bias.slot)[o];
          for (int64_t j = 0; j < kK; ++j) {
            const int64_t src = h + j - 1;
            if (src < 0 || src >= kH) continue;
            for (int64_t c = 0; c < kCin; ++c) {
              want += W[(o * kK + j) * kCin + c] * xv[((b * kH + src) * kD + d) * kCin + c];
            }
          }
          EXPECT_NEAR(conv->out()->value()[((b * kH + h) * kD + d) * kCout + o], want, 1e-5);
        }
      }
    }
  }
}

TEST(FieldConvTest, BackwardMatchesFiniteDifferences) {
  for (int64_t kernel : {1, 3, 7}) {
    ParameterArena arena(2);
    Graph graph(&arena, 1);
    Node* x = graph.AddInput(kH * kD * kCin, true);
    FieldConv* conv = graph.Add<FieldConv>(x, kH, kD, kCin, kCout, kernel, "conv");
    Node* in[] = {x};
    Node* out[] = {conv->out()};
    ExpectGradientsMatch(&graph, &arena, in, {RandomValues(3 * kH * kD * kCin, 4)}, out, 3);
  }
}

TEST(FieldConvTest, InitialisedUniformWithinOneOverSqrtFanIn) {
  ParameterArena arena(5);
  Graph graph(&arena, 1);
  Node* x = graph.AddInput(kH * kD * kCin, false);
  graph.Add<FieldConv>(x, kH, kD, kCin, kCout, kK, "conv");
  const float bound = 1.0f / std::sqrt(static_cast<float>(kK * kCin));
  for (const ParamInfo& p : arena.parameters()) {
    float max_abs = 0;
    for (int64_t i = 0; i < p.slot.size; ++i) {
      max_abs = std::max(max_abs, std::fabs(arena.value(p.slot)[i]));
    }
    EXPECT_LE(max_abs, bound) << p.name;
    EXPECT_GT(max_abs, 0.0f) << p.name;
  }
}

}  // namespace
}  // namespace ctrps::nn
