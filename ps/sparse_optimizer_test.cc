#include "ps/sparse_optimizer.h"

#include <cmath>
#include <vector>

#include "gtest/gtest.h"

namespace ctrps {
namespace {

constexpr int kDim = 3;
const float kGrads[3][kDim] = {{0.5f, -1.0f, 2.0f}, {0.1f, 0.2f, -0.3f}, {-1.5f, 0.0f, 0.7f}};

std::unique_ptr<SparseOptimizer> Make(SparseOptimizerConfig c) {
  auto o = SparseOptimizer::Create(c, kDim);
  EXPECT_TRUE(o.ok()) << o.status();
  return std::move(*o);
}

TEST(SparseOptimizerTest, SgdUpdateMatchesFormula) {
  SparseOptimizerConfig c;
  c.set_kind(SparseOptimizerConfig::SGD);
  c.set_learning_rate(0.1f);
  c.set_l2(0.01f);
  auto opt = Make(c);
  EXPECT_EQ(opt->state_dim(), 0);
  float w[kDim] = {1, 2, 3};
  double ref[kDim] = {1, 2, 3};
  for (uint32_t t = 1; t <= 3; ++t) {
    opt->Update(w, nullptr, kGrads[t - 1], t, opt->learning_rate());
    for (int i = 0; i < kDim; ++i) ref[i] -= 0.1 * (kGrads[t - 1][i] + 0.01 * ref[i]);
  }
  for (int i = 0; i < kDim; ++i) EXPECT_NEAR(w[i], ref[i], 1e-6);
}

TEST(SparseOptimizerTest, AdagradUpdateMatchesFormula) {
  SparseOptimizerConfig c;
  c.set_kind(SparseOptimizerConfig::ADAGRAD);
  c.set_learning_rate(0.05f);
  c.set_initial_accumulator(0.1f);
  c.set_epsilon(1e-8f);
  auto opt = Make(c);
  ASSERT_EQ(opt->state_dim(), kDim);
  float w[kDim] = {1, 2, 3}, acc[kDim];
  opt->InitState(acc);
  double rw[kDim] = {1, 2, 3}, racc[kDim] = {0.1, 0.1, 0.1};
  for (uint32_t t = 1; t <= 3; ++t) {
    opt->Update(w, acc, kGrads[t - 1], t, opt->learning_rate());
    for (int i = 0; i < kDim; ++i) {
      double g = kGrads[t - 1][i];
      racc[i] += g * g;
      rw[i] -= 0.05 * g / (std::sqrt(racc[i]) + 1e-8);
    }
  }
  for (int i = 0; i < kDim; ++i) {
    EXPECT_NEAR(w[i], rw[i], 1e-6);
    EXPECT_NEAR(acc[i], racc[i], 1e-6);
  }
}

TEST(SparseOptimizerTest, AdamUpdateMatchesFormulaWithPerRowBiasCorrection) {
  SparseOptimizerConfig c;
  c.set_kind(SparseOptimizerConfig::ADAM);
  c.set_learning_rate(0.01f);
  c.set_l2(0.001f);
  auto opt = Make(c);
  ASSERT_EQ(opt->state_dim(), 2 * kDim);
  float w[kDim] = {1, 2, 3}, state[2 * kDim] = {0};
  double rw[kDim] = {1, 2, 3}, m[kDim] = {0}, v[kDim] = {0};
  for (uint32_t t = 1; t <= 3; ++t) {
    opt->Update(w, state, kGrads[t - 1], t, opt->learning_rate());
    for (int i = 0; i < kDim; ++i) {
      double g = kGrads[t - 1][i] + 0.001 * rw[i];
      m[i] = 0.9 * m[i] + 0.1 * g;
      v[i] = 0.999 * v[i] + 0.001 * g * g;
      double mh = m[i] / (1 - std::pow(0.9, t)), vh = v[i] / (1 - std::pow(0.999, t));
      rw[i] -= 0.01 * mh / (std::sqrt(vh) + 1e-8);
    }
  }
  for (int i = 0; i < kDim; ++i) EXPECT_NEAR(w[i], rw[i], 1e-5) << i;
}

TEST(SparseOptimizerTest, FtrlUpdateMatchesFormula) {
  SparseOptimizerConfig c;
  c.set_kind(SparseOptimizerConfig::FTRL);
  c.set_learning_rate(0.1f);
  c.set_ftrl_beta(1.0f);
  c.set_l1(0.05f);
  c.set_l2(0.01f);
  auto opt = Make(c);
  float w[kDim] = {0, 0, 0}, state[2 * kDim] = {0};
  double rw[kDim] = {0, 0, 0}, z[kDim] = {0}, n[kDim] = {0};
  for (uint32_t t = 1; t <= 3; ++t) {
    opt->Update(w, state, kGrads[t - 1], t, opt->learning_rate());
    for (int i = 0; i < kDim; ++i) {
      double g = kGrads[t - 1][i];
      double sigma = (std::sqrt(n[i] + g * g) - std::sqrt(n[i])) / 0.1;
      z[i] += g - sigma * rw[i];
      n[i] += g * g;
      rw[i] = std::fabs(z[i]) <= 0.05
                  ? 0
                  : -(z[i] - (z[i] > 0 ? 0.05 : -0.05)) / ((1.0 + std::sqrt(n[i])) / 0.1 + 0.01);
    }
  }
  for (int i = 0; i < kDim; ++i) EXPECT_NEAR(w[i], rw[i], 1e-5) << i;
  // A gradient under l1 leaves the weight exactly zero (sparsity).
  float w2[kDim] = {0, 0, 0}, s2[2 * kDim] = {0};
  const float small[kDim] = {0.01f, -0.02f, 0.04f};
  opt->Update(w2, s2, small, 1, opt->learning_rate());
  for (float x : w2) EXPECT_EQ(x, 0.0f);
}

TEST(SparseOptimizerTest, NegativeLearningRateIsRejected) {
  SparseOptimizerConfig c;
  c.set_learning_rate(-1);
  EXPECT_EQ(SparseOptimizer::Create(c, 4).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(InitializeRowTest, IsAPureFunctionOfSeedAndKey) {
  TableConfig t;
  t.set_name("t");
  t.set_dim(8);
  t.mutable_init()->set_kind(InitializerConfig::NORMAL);
  t.mutable_init()->set_scale(0.1f);
  std::vector<float> a(8), b(8), c(8);
  InitializeRow(t, 42, a.data(), 8);
  InitializeRow(t, 42, b.data(), 8);
  InitializeRow(t, 43, c.data(), 8);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  for (float x : a) EXPECT_LE(std::fabs(x), 0.2f + 1e-6f);
  t.set_seed(7);
  InitializeRow(t, 42, c.data(), 8);
  EXPECT_NE(a, c);
}

TEST(InitializeRowTest, NormalHasRequestedSpread) {
  TableConfig t;
  t.set_dim(1);
  t.mutable_init()->set_kind(InitializerConfig::NORMAL);
  t.mutable_init()->set_scale(1.0f);
  double sum = 0, sq = 0;
  const int n = 200000;
  for (int k = 0; k < n; ++k) {
    float x;
    InitializeRow(t, k, &x, 1);
    sum += x;
    sq += x * x;
  }
  EXPECT_NEAR(sum / n, 0.0, 0.01);
  // Variance of N(0,1) truncated at 2 sigma is about 0.774.
  EXPECT_NEAR(sq / n, 0.774, 0.01);
}

}  // namespace
}  // namespace ctrps
