#include "worker/nn/layers/blocks/feature_gate.h"

#include <vector>

#include "gtest/gtest.h"
#include "worker/nn/gradient_check.h"
#include "worker/nn/layers/basic/learned_vector.h"

namespace ctrps::nn {
namespace {

TEST(FeatureGateTest, PerSampleGateBackwardMatchesFiniteDifferences) {
  ParameterArena arena(1);
  Graph graph(&arena, 1);
  Node* x = graph.AddInput(4, true);
  Node* g = graph.AddInput(4, true);
  FeatureGate* gate = graph.Add<FeatureGate>(x, g);
  Node* in[] = {x, g};
  Node* out[] = {gate->out()};
  ExpectGradientsMatch(&graph, &arena, in, {RandomValues(12, 1), RandomValues(12, 2)}, out, 3);
}

TEST(FeatureGateTest, SharedGateBroadcastsOverTheBatch) {
  ParameterArena arena(1);
  Graph graph(&arena, 1);
  Node* x = graph.AddInput(3, true);
  LearnedVector* g = graph.Add<LearnedVector>(3, Initializer::Uniform(1.0f), "gate");
  FeatureGate* gate = graph.Add<FeatureGate>(x, g->out());
  std::vector<float> xv = RandomValues(4 * 3, 1);
  graph.BindInput(x, xv.data(), nullptr);
  graph.Forward(4, {});
  for (int r = 0; r < 4; ++r) {
    for (int j = 0; j < 3; ++j) {
      EXPECT_FLOAT_EQ(gate->out()->value()[r * 3 + j], xv[r * 3 + j] * arena.value(g->value())[j]);
    }
  }
  Node* in[] = {x};
  Node* out[] = {gate->out()};
  ExpectGradientsMatch(&graph, &arena, in, {xv}, out, 4);
}

}  // namespace
}  // namespace ctrps::nn
