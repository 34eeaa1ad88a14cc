#include "worker/nn/layers/basic/select_fields.h"

#include <vector>

#include "gtest/gtest.h"
#include "worker/nn/gradient_check.h"

namespace ctrps::nn {
namespace {

TEST(SelectFieldsTest, ForwardCopiesTheFieldsInTheGivenOrder) {
  ParameterArena arena(1);
  Graph graph(&arena, 1);
  Node* x = graph.AddInput(6, false);  // 3 fields of dim 2
  SelectFields* sel = graph.Add<SelectFields>(x, 2, std::vector<int>{2, 0});
  std::vector<float> xv = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  graph.BindInput(x, xv.data(), nullptr);
  graph.Forward(2, {});
  EXPECT_EQ(std::vector<float>(sel->out()->value(), sel->out()->value() + 8),
            (std::vector<float>{5, 6, 1, 2, 11, 12, 7, 8}));
}

TEST(SelectFieldsTest, BackwardMatchesFiniteDifferences) {
  ParameterArena arena(1);
  Graph graph(&arena, 1);
  Node* x = graph.AddInput(12, true);  // 4 fields of dim 3
  SelectFields* sel = graph.Add<SelectFields>(x, 3, std::vector<int>{3, 1});
  Node* in[] = {x};
  Node* out[] = {sel->out()};
  ExpectGradientsMatch(&graph, &arena, in, {RandomValues(36, 1)}, out, 3);
}

TEST(SelectFieldsTest, GradientsAddUpWhenTheInputFeedsTwoSelections) {
  ParameterArena arena(1);
  Graph graph(&arena, 1);
  Node* x = graph.AddInput(8, true);  // 4 fields of dim 2
  SelectFields* a = graph.Add<SelectFields>(x, 2, std::vector<int>{0, 1, 2});
  SelectFields* b = graph.Add<SelectFields>(x, 2, std::vector<int>{1});
  Node* in[] = {x};
  Node* out[] = {a->out(), b->out()};
  ExpectGradientsMatch(&graph, &arena, in, {RandomValues(16, 2)}, out, 2);
}

}  // namespace
}  // namespace ctrps::nn
