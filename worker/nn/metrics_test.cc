#include "worker/nn/metrics.h"

#include <cmath>
#include <vector>

#include "gtest/gtest.h"
#include "worker/nn/random.h"

namespace ctrps::nn {
namespace {

double BruteForceAuc(const std::vector<float>& s, const std::vector<float>& y) {
  double wins = 0, pairs = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (y[i] < 0.5f) continue;
    for (size_t j = 0; j < s.size(); ++j) {
      if (y[j] >= 0.5f) continue;
      pairs += 1;
      wins += s[i] > s[j] ? 1.0 : (s[i] == s[j] ? 0.5 : 0.0);
    }
  }
  return wins / pairs;
}

TEST(MetricsTest, AucMatchesPairwiseCountWithManyTies) {
  Rng rng(3);
  for (int trial = 0; trial < 20; ++trial) {
    const int n = 50 + trial * 17;
    std::vector<float> s(n), y(n);
    for (int i = 0; i < n; ++i) {
      // Few distinct scores, so ties are everywhere.
      s[i] = static_cast<float>(static_cast<int>(rng.Uniform() * 8)) / 8;
      y[i] = rng.Uniform() < 0.3f + 0.4f * s[i] ? 1.0f : 0.0f;
    }
    y[0] = 1.0f;
    y[1] = 0.0f;
    EXPECT_NEAR(*ComputeAuc(s, y), BruteForceAuc(s, y), 1e-6);
  }
}

TEST(MetricsTest, AucMatchesPairwiseCountWithDistinctScores) {
  Rng rng(4);
  std::vector<float> s(300), y(300);
  for (int i = 0; i < 300; ++i) {
    s[i] = rng.Uniform();
    y[i] = rng.Uniform() < s[i] ? 1.0f : 0.0f;
  }
  EXPECT_NEAR(*ComputeAuc(s, y), BruteForceAuc(s, y), 1e-6);
}

TEST(MetricsTest, AucOfKnownCases) {
  EXPECT_DOUBLE_EQ(*ComputeAuc(std::vector<float>{0.1f, 0.9f}, std::vector<float>{0, 1}), 1.0);
  EXPECT_DOUBLE_EQ(*ComputeAuc(std::vector<float>{0.9f, 0.1f}, std::vector<float>{0, 1}), 0.0);
  EXPECT_DOUBLE_EQ(*ComputeAuc(std::vector<float>{0.5f, 0.5f}, std::vector<float>{0, 1}), 0.5);
  // sklearn: roc_auc_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
  EXPECT_DOUBLE_EQ(
      *ComputeAuc(std::vector<float>{0.1f, 0.4f, 0.35f, 0.8f}, std::vector<float>{0, 0, 1, 1}),
      0.75);
}

TEST(MetricsTest, AucNeedsBothClassesAndMatchingSizes) {
  EXPECT_EQ(ComputeAuc(std::vector<float>{0.1f, 0.2f}, std::vector<float>{1, 1}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ComputeAuc(std::vector<float>{0.1f}, std::vector<float>{1, 0}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ComputeAuc(std::vector<float>{NAN, 0.2f}, std::vector<float>{1, 0}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(MetricsTest, LogLossMatchesFormulaAndClips) {
  const std::vector<float> p = {0.9f, 0.2f, 0.0f, 1.0f};
  const std::vector<float> y = {1, 0, 0, 0};
  const double ref =
      -(std::log(double{0.9f}) + std::log(1 - double{0.2f}) + std::log(1 - 1e-7) + std::log(1e-7)) /
      4;
  EXPECT_NEAR(*ComputeLogLoss(p, y), ref, 1e-6);
  EXPECT_EQ(ComputeLogLoss({}, {}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(MetricsTest, MergedSetsGiveTheMetricsOfTheUnion) {
  Rng rng(5);
  std::vector<float> s(200), y(200);
  for (int i = 0; i < 200; ++i) {
    s[i] = rng.Uniform();
    y[i] = rng.Uniform() < s[i] ? 1.0f : 0.0f;
  }
  EvalSet a, b, all;
  a.Add(std::span(s).first(70), std::span(y).first(70));
  b.Add(std::span(s).subspan(70), std::span(y).subspan(70));
  all.Add(s, y);
  a.Merge(b);
  EXPECT_EQ(a.size(), 200);
  EXPECT_DOUBLE_EQ(*a.Auc(), *all.Auc());
  EXPECT_DOUBLE_EQ(*a.LogLoss(), *all.LogLoss());
  a.Clear();
  EXPECT_EQ(a.size(), 0);
}

}  // namespace
}  // namespace ctrps::nn
