#include "worker/nn/layers/basic/learned_vector.h"

#include <vector>

#include "gtest/gtest.h"
#include "worker/nn/gradient_check.h"

namespace ctrps::nn {
namespace {

TEST(LearnedVectorTest, IsOneRowWhateverTheBatch) {
  ParameterArena arena(1);
  Graph graph(&arena, 1);
  LearnedVector* v = graph.Add<LearnedVector>(3, Initializer::Constant(2.0f), "ctx");
  graph.Forward(16, {});
  EXPECT_EQ(v->out()->rows(), 1);
  EXPECT_FALSE(v->out()->per_sample());
  EXPECT_EQ(v->out()->value()[2], 2.0f);
}

TEST(LearnedVectorTest, BackwardMatchesFiniteDifferences) {
  ParameterArena arena(1);
  Graph graph(&arena, 1);
  LearnedVector* v = graph.Add<LearnedVector>(4, Initializer::Uniform(1.0f), "ctx");
  Node* out[] = {v->out()};
  ExpectGradientsMatch(&graph, &arena, {}, {}, out, 5);
}

}  // namespace
}  // namespace ctrps::nn
