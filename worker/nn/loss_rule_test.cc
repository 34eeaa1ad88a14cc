#include "worker/nn/loss_rule.h"

#include <cmath>
#include <vector>

#include "gtest/gtest.h"
#include "worker/nn/bce_loss.h"
#include "worker/nn/gradient_check.h"

namespace ctrps::nn {
namespace {

constexpr int kBatch = 6;
const std::vector<float> kLabels = {1, 0, 1, 1, 0, 0};

double Bce(const std::vector<float>& z) {
  std::vector<float> d(z.size());
  return SigmoidCrossEntropyWithLogits(z, kLabels, d);
}

struct TriBce {
  std::vector<float> logit, a, b;
  std::vector<float> d_logit = std::vector<float>(kBatch), d_a = d_logit, d_b = d_logit;
  double Loss() {
    const std::span<const float> aux[] = {a, b};
    const std::span<float> d_aux[] = {d_a, d_b};
    return ComputeLoss(LossRule::kTriBce, logit, aux, kLabels, d_logit, d_aux);
  }
};

TEST(LossRuleTest, BceIsTheMeanCrossEntropy) {
  std::vector<float> z = RandomValues(kBatch, 1, -3, 3), d(kBatch), want(kBatch);
  const double want_loss = SigmoidCrossEntropyWithLogits(z, kLabels, want);
  EXPECT_EQ(NumAuxiliaryLogits(LossRule::kBce), 0);
  EXPECT_DOUBLE_EQ(ComputeLoss(LossRule::kBce, z, {}, kLabels, d, {}), want_loss);
  EXPECT_EQ(d, want);
}

TEST(LossRuleTest, TriBceWeightsEachSubLossByHowMuchWorseItIs) {
  // Sub-network a worse than the whole, b better: only a is added.
  TriBce t{{2, -2, 2, 2, -2, -2}, {0.5f, 0.2f, -0.1f, 0.3f, 0.1f, -0.4f}, {3, -3, 3, 3, -3, -3}};
  const double l = Bce(t.logit), la = Bce(t.a), lb = Bce(t.b);
  ASSERT_GT(la, l);
  ASSERT_LT(lb, l);
  EXPECT_EQ(NumAuxiliaryLogits(LossRule::kTriBce), 2);
  EXPECT_NEAR(t.Loss(), l + la * (la - l), 1e-9);
  for (float g : t.d_b) EXPECT_EQ(g, 0.0f);
}

TEST(LossRuleTest, TriBceGradientsMatchFiniteDifferences) {
  for (uint64_t seed : {1, 2, 3, 4}) {
    SCOPED_TRACE(seed);
    TriBce t{RandomValues(kBatch, seed, -2, 2), RandomValues(kBatch, seed + 10, -2, 2),
             RandomValues(kBatch, seed + 20, -2, 2)};
    t.Loss();
    const std::vector<float> d_logit = t.d_logit, d_a = t.d_a, d_b = t.d_b;
    GradCheckOptions options;
    options.atol = 1e-4;
    ExpectFiniteDifferencesMatch(
        "logit", [&] { return t.Loss(); }, t.logit.data(), d_logit.data(), kBatch, options);
    ExpectFiniteDifferencesMatch(
        "a", [&] { return t.Loss(); }, t.a.data(), d_a.data(), kBatch, options);
    ExpectFiniteDifferencesMatch(
        "b", [&] { return t.Loss(); }, t.b.data(), d_b.data(), kBatch, options);
  }
}

}  // namespace
}  // namespace ctrps::nn
