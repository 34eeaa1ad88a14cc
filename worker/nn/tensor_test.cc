#include "worker/nn/tensor.h"

#include <cstdint>

#include "gtest/gtest.h"

namespace ctrps::nn {
namespace {

TEST(TensorTest, ShapeAndSizeFollowResize) {
  Tensor t({2, 3, 4});
  EXPECT_EQ(t.rank(), 3);
  EXPECT_EQ(t.dim(1), 3);
  EXPECT_EQ(t.size(), 24);
  for (int64_t i = 0; i < t.size(); ++i) EXPECT_EQ(t[i], 0.0f);
  t.Resize({5, 2});
  EXPECT_EQ(t.size(), 10);
  EXPECT_EQ(t.shape(), (std::vector<int64_t>{5, 2}));
}

TEST(TensorTest, BufferIsAligned) {
  Tensor t({7, 3});
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data()) % kAlignBytes, 0u);
}

TEST(TensorTest, ShrinkingAndRegrowingKeepsTheAllocation) {
  Tensor t({64, 16});
  const float* before = t.data();
  t.Resize({8, 16});
  t.Resize({64, 16});
  EXPECT_EQ(t.data(), before);
}

TEST(TensorTest, FillSetsEveryElement) {
  Tensor t({3, 3});
  t.Fill(2.5f);
  for (float v : t.span()) EXPECT_EQ(v, 2.5f);
}

}  // namespace
}  // namespace ctrps::nn
