#include "worker/nn/layers/activation/dice.h"

#include <cmath>
#include <vector>

#include "gtest/gtest.h"
#include "worker/nn/gradient_check.h"

namespace ctrps::nn {
namespace {

TEST(DiceTest, TrainingForwardMatchesFormula) {
  constexpr int kRows = 4, kCols = 2;
  ParameterArena arena(1);
  Graph graph(&arena, 1);
  Node* x = graph.AddInput(kCols, false);
  Dice* dice = graph.Add<Dice>(x);
  arena.value(dice->alpha())[0] = 0.3f;
  arena.value(dice->alpha())[1] = -0.2f;
  std::vector<float> xv = RandomValues(kRows * kCols, 4, -2, 2);
  graph.BindInput(x, xv.data(), nullptr);
  graph.Forward(kRows, {.training = true});
  for (int j = 0; j < kCols; ++j) {
    double mean = 0, var = 0;
    for (int r = 0; r < kRows; ++r) mean += xv[r * kCols + j];
    mean /= kRows;
    for (int r = 0; r < kRows; ++r) var += std::pow(xv[r * kCols + j] - mean, 2);
    var /= kRows;
    const double alpha = arena.value(dice->alpha())[j];
    for (int r = 0; r < kRows; ++r) {
      const double v = xv[r * kCols + j];
      const double p = 1 / (1 + std::exp(-(v - mean) / std::sqrt(var + 1e-9)));
      EXPECT_NEAR(dice->out()->value()[r * kCols + j], p * v + alpha * (1 - p) * v, 1e-5);
    }
  }
}

TEST(DiceTest, BackwardMatchesFiniteDifferencesInTraining) {
  ParameterArena arena(1);
  Graph graph(&arena, 1);
  Node* x = graph.AddInput(3, true);
  Dice* dice = graph.Add<Dice>(x);
  RandomizeParameters(&arena, 3);
  Node* in[] = {x};
  Node* out[] = {dice->out()};
  ExpectGradientsMatch(&graph, &arena, in, {RandomValues(6 * 3, 2)}, out, 6);
}

TEST(DiceTest, EvaluationUsesRunningStatistics) {
  ParameterArena arena(1);
  Graph graph(&arena, 1);
  Node* x = graph.AddInput(3, true);
  Dice* dice = graph.Add<Dice>(x);
  RandomizeParameters(&arena, 3);
  for (int i = 0; i < 3; ++i) {
    arena.buffer(dice->normalizer().running_mean())[i] = 0.1f * i;
    arena.buffer(dice->normalizer().running_var())[i] = 0.5f + 0.2f * i;
  }
  std::vector<float> xv = RandomValues(5 * 3, 7);
  graph.BindInput(x, xv.data(), nullptr);
  graph.Forward(5, {.training = false});
  // One row alone gives the same output in evaluation.
  std::vector<float> first(xv.begin(), xv.begin() + 3);
  const std::vector<float> batch_out(dice->out()->value(), dice->out()->value() + 3);
  graph.BindInput(x, first.data(), nullptr);
  graph.Forward(1, {.training = false});
  for (int j = 0; j < 3; ++j) EXPECT_FLOAT_EQ(dice->out()->value()[j], batch_out[j]);
  Node* in[] = {x};
  Node* out[] = {dice->out()};
  ExpectGradientsMatch(&graph, &arena, in, {RandomValues(4 * 3, 2)}, out, 4, {.training = false});
}

}  // namespace
}  // namespace ctrps::nn
