#include "worker/nn/bce_loss.h"

#include <cmath>
#include <vector>

#include "gtest/gtest.h"

namespace ctrps::nn {
namespace {

TEST(BceLossTest, MatchesNaiveFormulaAndGradient) {
  const std::vector<float> logits = {-2.0f, 0.0f, 0.5f, 3.0f};
  const std::vector<float> labels = {0.0f, 1.0f, 1.0f, 0.0f};
  std::vector<float> d(4);
  const double loss = SigmoidCrossEntropyWithLogits(logits, labels, d);
  double ref = 0;
  for (int i = 0; i < 4; ++i) {
    const double p = 1 / (1 + std::exp(-double{logits[i]}));
    ref += -(labels[i] * std::log(p) + (1 - labels[i]) * std::log(1 - p));
    EXPECT_NEAR(d[i], (p - labels[i]) / 4, 1e-7);
  }
  EXPECT_NEAR(loss, ref / 4, 1e-7);
}

TEST(BceLossTest, GradientMatchesFiniteDifferences) {
  std::vector<float> logits = {-1.5f, 0.3f, 2.0f};
  const std::vector<float> labels = {1.0f, 0.0f, 1.0f};
  std::vector<float> d(3), scratch(3);
  SigmoidCrossEntropyWithLogits(logits, labels, d);
  for (int i = 0; i < 3; ++i) {
    const float saved = logits[i];
    logits[i] = saved + 1e-3f;
    const double plus = SigmoidCrossEntropyWithLogits(logits, labels, scratch);
    logits[i] = saved - 1e-3f;
    const double minus = SigmoidCrossEntropyWithLogits(logits, labels, scratch);
    logits[i] = saved;
    EXPECT_NEAR(d[i], (plus - minus) / 2e-3, 1e-4);
  }
}

TEST(BceLossTest, ExtremeLogitsStayFinite) {
  const std::vector<float> logits = {-1000.0f, 1000.0f, 1000.0f};
  const std::vector<float> labels = {0.0f, 1.0f, 0.0f};
  std::vector<float> d(3), p(3);
  const double loss = SigmoidCrossEntropyWithLogits(logits, labels, d);
  EXPECT_TRUE(std::isfinite(loss));
  EXPECT_NEAR(loss, 1000.0 / 3, 1e-3);
  for (float g : d) EXPECT_TRUE(std::isfinite(g));
  SigmoidProbabilities(logits, p);
  EXPECT_EQ(p[0], 0.0f);
  EXPECT_EQ(p[1], 1.0f);
}

}  // namespace
}  // namespace ctrps::nn
