#include "worker/nn/layers/basic/replace_fields.h"

#include <vector>

#include "gtest/gtest.h"
#include "worker/nn/gradient_check.h"

namespace ctrps::nn {
namespace {

TEST(ReplaceFieldsTest, ReplacesSlotsAndRoutesTheirGradients) {
  constexpr int kBatch = 3, kFields = 4, kDim = 2;
  ParameterArena arena(1);
  Graph graph(&arena, 1);
  Node* emb = graph.AddInput(kFields * kDim, true);
  Node* a = graph.AddInput(kDim, true);
  Node* c = graph.AddInput(kDim, true);
  auto* layer =
      graph.Add<ReplaceFields>(emb, kDim, std::vector<std::pair<int, Node*>>{{1, a}, {3, c}});
  std::vector<float> ev = RandomValues(kBatch * kFields * kDim, 1);
  std::vector<float> av = RandomValues(kBatch * kDim, 2), cv = RandomValues(kBatch * kDim, 3);
  graph.BindInput(emb, ev.data(), nullptr);
  graph.BindInput(a, av.data(), nullptr);
  graph.BindInput(c, cv.data(), nullptr);
  graph.Forward(kBatch, {});
  for (int b = 0; b < kBatch; ++b) {
    for (int f = 0; f < kFields; ++f) {
      for (int j = 0; j < kDim; ++j) {
        const float want = f == 1   ? av[b * kDim + j]
                           : f == 3 ? cv[b * kDim + j]
                                    : ev[(b * kFields + f) * kDim + j];
        EXPECT_EQ(layer->out()->value()[(b * kFields + f) * kDim + j], want);
      }
    }
  }
  Node* in[] = {emb, a, c};
  Node* out[] = {layer->out()};
  ExpectGradientsMatch(&graph, &arena, in, {ev, av, cv}, out, kBatch);
}

}  // namespace
}  // namespace ctrps::nn
