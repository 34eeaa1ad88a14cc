#include "worker/nn/layers/normalization/batch_norm.h"

#include <cmath>
#include <vector>

#include "gtest/gtest.h"
#include "worker/nn/gradient_check.h"

namespace ctrps::nn {
namespace {

TEST(BatchNormTest, TrainingNormalisesColumnsAndUpdatesRunningStats) {
  constexpr int kRows = 8, kCols = 3;
  ParameterArena arena(1);
  Graph graph(&arena, 1);
  Node* x = graph.AddInput(kCols, false);
  BatchNorm* bn = graph.Add<BatchNorm>(x);
  std::vector<float> xv = RandomValues(kRows * kCols, 4, 1, 5);
  graph.BindInput(x, xv.data(), nullptr);
  graph.Forward(kRows, {.training = true});
  const float* rm = arena.buffer(bn->normalizer().running_mean());
  const float* rv = arena.buffer(bn->normalizer().running_var());
  for (int j = 0; j < kCols; ++j) {
    double mean = 0, var = 0, out_mean = 0, out_var = 0;
    for (int r = 0; r < kRows; ++r) mean += xv[r * kCols + j];
    mean /= kRows;
    for (int r = 0; r < kRows; ++r) var += std::pow(xv[r * kCols + j] - mean, 2);
    for (int r = 0; r < kRows; ++r) out_mean += bn->out()->value()[r * kCols + j];
    out_mean /= kRows;
    for (int r = 0; r < kRows; ++r) out_var += std::pow(bn->out()->value()[r * kCols + j], 2);
    EXPECT_NEAR(out_mean, 0.0, 1e-5);
    EXPECT_NEAR(out_var / kRows, var / kRows / (var / kRows + 1e-5), 1e-4);
    // PyTorch: momentum 0.1, unbiased variance in the running estimate.
    EXPECT_NEAR(rm[j], 0.1 * mean, 1e-5);
    EXPECT_NEAR(rv[j], 0.9 + 0.1 * var / (kRows - 1), 1e-5);
  }
}

TEST(BatchNormTest, BackwardMatchesFiniteDifferencesInTraining) {
  ParameterArena arena(1);
  Graph graph(&arena, 1);
  Node* x = graph.AddInput(4, true);
  BatchNorm* bn = graph.Add<BatchNorm>(x);
  RandomizeParameters(&arena, 3, 1.0f);
  Node* in[] = {x};
  Node* out[] = {bn->out()};
  ExpectGradientsMatch(&graph, &arena, in, {RandomValues(6 * 4, 2)}, out, 6);
}

TEST(BatchNormTest, BackwardMatchesFiniteDifferencesInEvaluation) {
  ParameterArena arena(1);
  Graph graph(&arena, 1);
  Node* x = graph.AddInput(4, true);
  BatchNorm* bn = graph.Add<BatchNorm>(x);
  RandomizeParameters(&arena, 3, 1.0f);
  for (int j = 0; j < 4; ++j) {
    arena.buffer(bn->normalizer().running_mean())[j] = 0.2f * j;
    arena.buffer(bn->normalizer().running_var())[j] = 0.5f + j;
  }
  Node* in[] = {x};
  Node* out[] = {bn->out()};
  ExpectGradientsMatch(&graph, &arena, in, {RandomValues(3 * 4, 2)}, out, 3, {.training = false});
}

TEST(BatchNormTest, ChannelsAreNormalisedOverEveryRowOfTheSample) {
  // Width 6 as 3 rows of 2 channels: the same as a 2-wide BatchNorm over a
  // batch 3 times larger.
  ParameterArena arena(1), arena2(1);
  Graph graph(&arena, 1), graph2(&arena2, 1);
  Node* x = graph.AddInput(6, false);
  BatchNorm* bn = graph.Add<BatchNorm>(x, "bn", 1e-5f, 0.1f, 2);
  Node* x2 = graph2.AddInput(2, false);
  BatchNorm* bn2 = graph2.Add<BatchNorm>(x2, "bn");
  ASSERT_EQ(arena.num_parameters(), 4);
  std::vector<float> xv = RandomValues(4 * 6, 5);
  graph.BindInput(x, xv.data(), nullptr);
  graph.Forward(4, {.training = true});
  graph2.BindInput(x2, xv.data(), nullptr);
  graph2.Forward(12, {.training = true});
  for (int i = 0; i < 24; ++i) EXPECT_FLOAT_EQ(bn->out()->value()[i], bn2->out()->value()[i]);
  for (int j = 0; j < 2; ++j) {
    EXPECT_FLOAT_EQ(arena.buffer(bn->normalizer().running_var())[j],
                    arena2.buffer(bn2->normalizer().running_var())[j]);
  }
}

TEST(BatchNormTest, ChannelsBackwardMatchesFiniteDifferences) {
  for (bool training : {true, false}) {
    ParameterArena arena(1);
    Graph graph(&arena, 1);
    Node* x = graph.AddInput(6, true);
    BatchNorm* bn = graph.Add<BatchNorm>(x, "bn", 1e-5f, 0.1f, 3);
    RandomizeParameters(&arena, 3, 1.0f);
    arena.buffer(bn->normalizer().running_var())[1] = 2.0f;
    Node* in[] = {x};
    Node* out[] = {bn->out()};
    ExpectGradientsMatch(&graph, &arena, in, {RandomValues(4 * 6, 2)}, out, 4,
                         {.training = training});
  }
}

}  // namespace
}  // namespace ctrps::nn
