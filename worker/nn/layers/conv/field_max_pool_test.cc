#include "worker/nn/layers/conv/field_max_pool.h"

#include <vector>

#include "gtest/gtest.h"
#include "worker/nn/gradient_check.h"

namespace ctrps::nn {
namespace {

TEST(FieldMaxPoolTest, ForwardTakesTheMaximumOfEachWindow) {
  ParameterArena arena(1);
  Graph graph(&arena, 1);
  // 5 rows of width 2, pool 2: windows {0, 1}, {2, 3}, {4}.
  Node* x = graph.AddInput(10, false);
  FieldMaxPool* pool = graph.Add<FieldMaxPool>(x, 5, 2, 2);
  EXPECT_EQ(pool->out()->width(), 6);
  std::vector<float> xv = {1, 8, 3, 2, -1, -5, -2, -4, 7, 0};
  graph.BindInput(x, xv.data(), nullptr);
  graph.Forward(1, {});
  EXPECT_EQ(std::vector<float>(pool->out()->value(), pool->out()->value() + 6),
            (std::vector<float>{3, 8, -1, -4, 7, 0}));
}

TEST(FieldMaxPoolTest, BackwardMatchesFiniteDifferences) {
  for (int64_t p : {1, 2, 3}) {
    ParameterArena arena(1);
    Graph graph(&arena, 1);
    Node* x = graph.AddInput(5 * 4, true);
    FieldMaxPool* pool = graph.Add<FieldMaxPool>(x, 5, 4, p);
    Node* in[] = {x};
    Node* out[] = {pool->out()};
    ExpectGradientsMatch(&graph, &arena, in, {RandomValues(3 * 20, 6)}, out, 3);
  }
}

}  // namespace
}  // namespace ctrps::nn
