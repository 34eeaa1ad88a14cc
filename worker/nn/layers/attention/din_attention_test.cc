#include "worker/nn/layers/attention/din_attention.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "worker/nn/gradient_check.h"

namespace ctrps::nn {
namespace {

constexpr int kBatch = 4, kLen = 5, kDim = 3, kFields = 2, kTarget = 1;

struct Fixture {
  ParameterArena arena{1};
  Graph graph{&arena, 1};
  Node* seq;
  Node* emb;
  DinAttention* din;

  explicit Fixture(Activation activation, std::vector<int> units = {6, 4}) {
    seq = graph.AddInput(kLen * kDim, true);
    emb = graph.AddInput(kFields * kDim, true);
    MlpOptions mlp;
    mlp.hidden_units = std::move(units);
    mlp.activation = activation;
    mlp.name = "att";
    din = graph.Add<DinAttention>(seq, kLen, emb, kTarget * kDim, mlp);
    RandomizeParameters(&arena, 3);
  }
};

TEST(DinAttentionTest, OutputIsUnnormalisedWeightedSumOfLocalActivations) {
  // One hidden ReLU layer, checked against explicit loops over the rows.
  Fixture f(Activation::kRelu, {5});
  std::vector<float> seq = RandomValues(kBatch * kLen * kDim, 1);
  std::vector<float> emb = RandomValues(kBatch * kFields * kDim, 2);
  const std::vector<int32_t> lengths = {5, 0, 2, 3};
  f.din->set_lengths(lengths.data());
  f.graph.BindInput(f.seq, seq.data(), nullptr);
  f.graph.BindInput(f.emb, emb.data(), nullptr);
  f.graph.Forward(kBatch, {});
  const auto& p = f.arena.parameters();  // w1 [5, 4D], b1 [5], w2 [1, 5], b2 [1]
  ASSERT_EQ(p.size(), 4u);
  const float* w1 = f.arena.value(p[0].slot);
  const float* b1 = f.arena.value(p[1].slot);
  const float* w2 = f.arena.value(p[2].slot);
  const float* b2 = f.arena.value(p[3].slot);
  for (int b = 0; b < kBatch; ++b) {
    const float* t = emb.data() + (b * kFields + kTarget) * kDim;
    std::vector<double> ref(kDim, 0.0);
    for (int l = 0; l < lengths[b]; ++l) {
      const float* h = seq.data() + (b * kLen + l) * kDim;
      float x[4 * kDim];
      for (int j = 0; j < kDim; ++j) {
        x[j] = h[j];
        x[kDim + j] = t[j];
        x[2 * kDim + j] = h[j] - t[j];
        x[3 * kDim + j] = h[j] * t[j];
      }
      double a = b2[0];
      for (int u = 0; u < 5; ++u) {
        double z = b1[u];
        for (int k = 0; k < 4 * kDim; ++k) z += double{w1[u * 4 * kDim + k]} * x[k];
        a += w2[u] * std::max(z, 0.0);
      }
      for (int j = 0; j < kDim; ++j) ref[j] += a * h[j];
    }
    for (int j = 0; j < kDim; ++j) {
      EXPECT_NEAR(f.din->out()->value()[b * kDim + j], ref[j], 1e-5) << b << " " << j;
    }
  }
}

TEST(DinAttentionTest, BackwardMatchesFiniteDifferences) {
  const std::vector<int32_t> lengths = {5, 0, 2, 3};
  for (Activation act : {Activation::kRelu, Activation::kDice, Activation::kPrelu}) {
    SCOPED_TRACE(static_cast<int>(act));
    for (bool training : {true, false}) {
      Fixture f(act);
      f.din->set_lengths(lengths.data());
      Node* in[] = {f.seq, f.emb};
      Node* out[] = {f.din->out()};
      GradCheckOptions options;
      options.training = training;
      ExpectGradientsMatch(
          &f.graph, &f.arena, in,
          {RandomValues(kBatch * kLen * kDim, 1), RandomValues(kBatch * kFields * kDim, 2)}, out,
          kBatch, options);
    }
  }
}

TEST(DinAttentionTest, PaddingIsNotReadAndGetsZeroGradient) {
  Fixture f(Activation::kDice);
  const std::vector<int32_t> lengths = {2, 0, 5, 1};
  f.din->set_lengths(lengths.data());
  std::vector<float> seq = RandomValues(kBatch * kLen * kDim, 1);
  std::vector<float> emb = RandomValues(kBatch * kFields * kDim, 2);
  std::vector<float> dy = RandomValues(kBatch * kDim, 3);
  std::vector<float> dseq(seq.size(), 7.0f), demb(emb.size(), 7.0f);
  f.graph.BindInput(f.seq, seq.data(), dseq.data());
  f.graph.BindInput(f.emb, emb.data(), demb.data());
  f.graph.Forward(kBatch, {.training = true});
  const std::vector<float> first(f.din->out()->value(), f.din->out()->value() + kBatch * kDim);
  f.graph.Backward(f.din->out(), dy.data());
  for (int b = 0; b < kBatch; ++b) {
    for (int l = lengths[b]; l < kLen; ++l) {
      for (int j = 0; j < kDim; ++j) {
        EXPECT_EQ(dseq[(b * kLen + l) * kDim + j], 0.0f);
        seq[(b * kLen + l) * kDim + j] = 1e6f;
      }
    }
    // Only the query's columns of emb get a gradient; an empty history gives none.
    for (int j = 0; j < kDim; ++j) {
      EXPECT_EQ(demb[(b * kFields + 0) * kDim + j], 0.0f);
      if (lengths[b] == 0) {
        EXPECT_EQ(demb[(b * kFields + kTarget) * kDim + j], 0.0f);
      }
    }
  }
  // With garbage in the padding the output is the same.
  f.graph.Forward(kBatch, {.training = true});
  for (int i = 0; i < kBatch * kDim; ++i) EXPECT_FLOAT_EQ(f.din->out()->value()[i], first[i]);
}

TEST(DinAttentionTest, EmptyBatchHistoryGivesZerosAndKeepsRunningStatistics) {
  Fixture f(Activation::kDice);
  const std::vector<int32_t> lengths(kBatch, 0);
  f.din->set_lengths(lengths.data());
  std::vector<float> seq = RandomValues(kBatch * kLen * kDim, 1);
  std::vector<float> emb = RandomValues(kBatch * kFields * kDim, 2);
  std::vector<float> dy = RandomValues(kBatch * kDim, 3);
  std::vector<float> dseq(seq.size(), 7.0f), demb(emb.size(), 7.0f);
  const std::vector<float> buffers(f.arena.buffers().begin(), f.arena.buffers().end());
  f.graph.BindInput(f.seq, seq.data(), dseq.data());
  f.graph.BindInput(f.emb, emb.data(), demb.data());
  f.arena.ZeroGrads();
  f.graph.Forward(kBatch, {.training = true});
  f.graph.Backward(f.din->out(), dy.data());
  for (int i = 0; i < kBatch * kDim; ++i) EXPECT_EQ(f.din->out()->value()[i], 0.0f);
  for (float g : dseq) EXPECT_EQ(g, 0.0f);
  for (float g : demb) EXPECT_EQ(g, 0.0f);
  for (float g : f.arena.grads()) EXPECT_EQ(g, 0.0f);
  EXPECT_TRUE(std::equal(buffers.begin(), buffers.end(), f.arena.buffers().begin()));
}

TEST(DinAttentionTest, FlopsCountTheAttentionMlpPerHistoryRow) {
  Fixture f(Activation::kDice);
  const int mlp = 2 * (4 * kDim * 6 + 6 * 4 + 4 * 1);
  EXPECT_EQ(f.din->FlopsPerSample(), kLen * (mlp + 2 * kDim));
}

}  // namespace
}  // namespace ctrps::nn
