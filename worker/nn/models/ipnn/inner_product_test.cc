#include "worker/nn/models/ipnn/inner_product.h"

#include <vector>

#include "gtest/gtest.h"
#include "worker/nn/gradient_check.h"

namespace ctrps::nn {
namespace {

TEST(InnerProductTest, ForwardListsEveryPairsInnerProductInRowMajorOrder) {
  constexpr int kRows = 3, kFields = 4, kDim = 5;
  ParameterArena arena(1);
  Graph graph(&arena, 1);
  Node* x = graph.AddInput(kFields * kDim, false);
  InnerProduct* ip = graph.Add<InnerProduct>(x, kFields, kDim);
  ASSERT_EQ(ip->out()->width(), kFields * (kFields - 1) / 2);
  std::vector<float> xv = RandomValues(kRows * kFields * kDim, 3);
  graph.BindInput(x, xv.data(), nullptr);
  graph.Forward(kRows, {});
  for (int r = 0; r < kRows; ++r) {
    int p = 0;
    for (int i = 0; i < kFields; ++i) {
      for (int j = i + 1; j < kFields; ++j, ++p) {
        double ref = 0;
        for (int k = 0; k < kDim; ++k) {
          ref += double{xv[(r * kFields + i) * kDim + k]} * xv[(r * kFields + j) * kDim + k];
        }
        EXPECT_NEAR(ip->out()->value()[r * 6 + p], ref, 1e-5) << "row " << r << " pair " << i << j;
      }
    }
  }
  EXPECT_EQ(ip->FlopsPerSample(), 2 * 6 * kDim);
}

TEST(InnerProductTest, BackwardMatchesFiniteDifferences) {
  for (int fields : {2, 3, 5}) {
    SCOPED_TRACE(fields);
    ParameterArena arena(1);
    Graph graph(&arena, 1);
    Node* x = graph.AddInput(fields * 4, true);
    InnerProduct* ip = graph.Add<InnerProduct>(x, fields, 4);
    Node* in[] = {x};
    Node* out[] = {ip->out()};
    ExpectGradientsMatch(&graph, &arena, in, {RandomValues(3 * fields * 4, fields)}, out, 3);
  }
}

}  // namespace
}  // namespace ctrps::nn
