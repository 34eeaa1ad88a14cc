#include "worker/nn/layers/basic/dropout.h"

#include <vector>

#include "gtest/gtest.h"
#include "worker/nn/gradient_check.h"

namespace ctrps::nn {
namespace {

TEST(DropoutTest, TrainingDropsAboutRateAndScalesTheRest) {
  constexpr int kRows = 100, kCols = 100;
  ParameterArena arena(1);
  Graph graph(&arena, 1);
  Node* x = graph.AddInput(kCols, false);
  Dropout* dropout = graph.Add<Dropout>(x, 0.3f);
  std::vector<float> xv(kRows * kCols, 1.0f);
  graph.BindInput(x, xv.data(), nullptr);
  graph.Forward(kRows, {.training = true, .step = 5});
  int zeros = 0;
  for (int i = 0; i < kRows * kCols; ++i) {
    const float y = dropout->out()->value()[i];
    if (y == 0.0f) {
      ++zeros;
    } else {
      EXPECT_FLOAT_EQ(y, 1.0f / 0.7f);
    }
  }
  EXPECT_NEAR(zeros / 10000.0, 0.3, 0.02);
  // Same step, same mask; another step, another mask.
  const std::vector<float> first(dropout->out()->value(), dropout->out()->value() + 10000);
  graph.Forward(kRows, {.training = true, .step = 5});
  EXPECT_EQ(first, std::vector<float>(dropout->out()->value(), dropout->out()->value() + 10000));
  graph.Forward(kRows, {.training = true, .step = 6});
  EXPECT_NE(first, std::vector<float>(dropout->out()->value(), dropout->out()->value() + 10000));
}

TEST(DropoutTest, EvaluationIsIdentity) {
  ParameterArena arena(1);
  Graph graph(&arena, 1);
  Node* x = graph.AddInput(8, false);
  Dropout* dropout = graph.Add<Dropout>(x, 0.5f);
  std::vector<float> xv = RandomValues(16, 1);
  graph.BindInput(x, xv.data(), nullptr);
  graph.Forward(2, {.training = false});
  EXPECT_EQ(xv, std::vector<float>(dropout->out()->value(), dropout->out()->value() + 16));
}

TEST(DropoutTest, BackwardMatchesFiniteDifferences) {
  for (bool training : {true, false}) {
    ParameterArena arena(1);
    Graph graph(&arena, 1);
    Node* x = graph.AddInput(6, true);
    Dropout* dropout = graph.Add<Dropout>(x, 0.4f);
    Node* in[] = {x};
    Node* out[] = {dropout->out()};
    ExpectGradientsMatch(&graph, &arena, in, {RandomValues(5 * 6, 2)}, out, 5,
                         {.training = training, .step = 3});
  }
}

}  // namespace
}  // namespace ctrps::nn
