#include "worker/nn/parameter_arena.h"

#include <cmath>
#include <cstdint>

#include "gtest/gtest.h"

namespace ctrps::nn {
namespace {

TEST(ParameterArenaTest, ParametersAreContiguousAndAligned) {
  ParameterArena arena(1);
  ParamSlot a = arena.AddParameter("a", 5, Initializer::Constant(1.0f));
  ParamSlot b = arena.AddParameter("b", 20, Initializer::Zeros());
  EXPECT_EQ(a.offset, 0);
  EXPECT_EQ(b.offset % 16, 0);
  EXPECT_GT(b.offset, a.offset);
  EXPECT_EQ(arena.values().size(), arena.grads().size());
  EXPECT_EQ(arena.num_parameters(), 25);
  EXPECT_EQ(arena.value(a)[4], 1.0f);
  // Padding stays zero.
  EXPECT_EQ(arena.values()[5], 0.0f);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(arena.value(b)) % kAlignBytes, 0u);
  ASSERT_EQ(arena.parameters().size(), 2u);
  EXPECT_EQ(arena.parameters()[1].name, "b");
}

TEST(ParameterArenaTest, XavierUniformStaysInBoundAndIsDeterministic) {
  ParameterArena a1(7), a2(7), a3(8);
  ParamSlot s1 = a1.AddParameter("w", 600, Initializer::XavierUniform(20, 30));
  ParamSlot s2 = a2.AddParameter("w", 600, Initializer::XavierUniform(20, 30));
  ParamSlot s3 = a3.AddParameter("w", 600, Initializer::XavierUniform(20, 30));
  const float bound = std::sqrt(6.0f / 50.0f);
  double sum = 0, sum_sq = 0;
  bool differs = false;
  for (int i = 0; i < 600; ++i) {
    const float v = a1.value(s1)[i];
    EXPECT_LE(std::fabs(v), bound);
    EXPECT_EQ(v, a2.value(s2)[i]);
    differs |= v != a3.value(s3)[i];
    sum += v;
    sum_sq += v * v;
  }
  EXPECT_TRUE(differs);
  // Variance of U(-a, a) is a^2 / 3.
  EXPECT_NEAR(sum / 600, 0.0, 0.05);
  EXPECT_NEAR(sum_sq / 600, bound * bound / 3, 0.02);
}

TEST(ParameterArenaTest, InitOfAParameterDoesNotDependOnEarlierSizes) {
  ParameterArena a1(3), a2(3);
  a1.AddParameter("x", 10, Initializer::Uniform(1.0f));
  a2.AddParameter("x", 99, Initializer::Uniform(1.0f));
  ParamSlot w1 = a1.AddParameter("w", 8, Initializer::Uniform(1.0f));
  ParamSlot w2 = a2.AddParameter("w", 8, Initializer::Uniform(1.0f));
  for (int i = 0; i < 8; ++i) EXPECT_EQ(a1.value(w1)[i], a2.value(w2)[i]);
}

TEST(ParameterArenaTest, ZeroGradsClearsEveryGradient) {
  ParameterArena arena(1);
  ParamSlot s = arena.AddParameter("w", 10, Initializer::Zeros());
  for (int i = 0; i < 10; ++i) arena.grad(s)[i] = 3.0f;
  arena.ZeroGrads();
  for (float g : arena.grads()) EXPECT_EQ(g, 0.0f);
}

TEST(ParameterArenaTest, BuffersLiveInTheirOwnArena) {
  ParameterArena arena(1);
  arena.AddParameter("w", 4, Initializer::Zeros());
  ParamSlot mean = arena.AddBuffer("bn.running_mean", 3, 0.0f);
  ParamSlot var = arena.AddBuffer("bn.running_var", 3, 1.0f);
  EXPECT_EQ(arena.buffer(var)[2], 1.0f);
  EXPECT_EQ(arena.buffer(mean)[0], 0.0f);
  EXPECT_EQ(arena.buffer_infos().size(), 2u);
  EXPECT_EQ(arena.num_parameters(), 4);
  EXPECT_GE(arena.buffers().size(), 6u);
}

}  // namespace
}  // namespace ctrps::nn
