#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "worker/nn/bce_loss.h"
#include "worker/nn/models/model_test_util.h"

namespace ctrps::nn::testing {
namespace {

constexpr char kNoDropout[] = "deep_net_dropout: 0 shallow_net_dropout: 0";

TEST(FcnModelTest, GradientsMatchFiniteDifferences) {
  CheckModelGradients(std::string("type: FCN fcn { ") + kNoDropout + " }");
  CheckModelGradients(std::string("type: FCN fcn { num_heads: 2 layer_norm: false "
                                  "num_deep_cross_layers: 2 num_shallow_cross_layers: 3 ") +
                      kNoDropout + " }");
  CheckModelGradients("type: FCN", /*training=*/false);
}

TEST(FcnModelTest, TriBceGradientsMatchFiniteDifferences) {
  CheckTrainingLossGradients(std::string("type: FCN fcn { ") + kNoDropout + " }");
  CheckTrainingLossGradients(std::string("type: FCN fcn { num_heads: 2 num_deep_cross_layers: 1 "
                                         "num_shallow_cross_layers: 2 ") +
                             kNoDropout + " }");
}

TEST(FcnModelTest, LogitIsTheMeanOfEcnAndLcnAndTheLossAddsTheirWeightedBces) {
  // ECN's logit alone is an ECN model's (same parameters, built first).
  auto fcn = Make("type: FCN fcn { num_deep_cross_layers: 2 num_shallow_cross_layers: 1 }");
  auto ecn = Make("type: ECN fcn { num_deep_cross_layers: 2 }");
  ASSERT_NE(fcn, nullptr);
  ASSERT_NE(ecn, nullptr);
  const auto& fp = fcn->params().parameters();
  const auto& ep = ecn->params().parameters();
  ASSERT_GT(fp.size(), ep.size());
  for (size_t i = 0; i < ep.size(); ++i) ASSERT_EQ(fp[i].name, ep[i].name);
  RandomizeParameters(&fcn->params(), 3);
  for (size_t i = 0; i < ep.size(); ++i) {
    std::copy_n(fcn->params().value(fp[i].slot), ep[i].slot.size, ecn->params().value(ep[i].slot));
  }
  // LCN: scale its output layer to zero and its bias to s, so its logit is s.
  const float s = -0.4f;
  std::fill_n(fcn->params().value(fp[fp.size() - 2].slot), fp[fp.size() - 2].slot.size, 0.0f);
  fcn->params().value(fp.back().slot)[0] = s;
  std::vector<float> emb = RandomValues(kBatch * kFields * kDim, 1);
  std::vector<float> z(kBatch), z_ecn(kBatch);
  const ModelInput in{kBatch, kFields, kDim, emb.data(), nullptr};
  fcn->Forward(in, false, z.data());
  ecn->Forward(in, false, z_ecn.data());
  std::vector<float> z_lcn(kBatch, s);
  for (int b = 0; b < kBatch; ++b) EXPECT_NEAR(z[b], 0.5f * (z_ecn[b] + s), 1e-5);

  const std::vector<float> labels = {1, 0, 1, 0};
  std::vector<float> d(kBatch);
  const double l = SigmoidCrossEntropyWithLogits(z, labels, d);
  const double l_ecn = SigmoidCrossEntropyWithLogits(z_ecn, labels, d);
  const double l_lcn = SigmoidCrossEntropyWithLogits(z_lcn, labels, d);
  const double want = l + std::max(0.0, l_ecn - l) * l_ecn + std::max(0.0, l_lcn - l) * l_lcn;
  EXPECT_NEAR(fcn->Loss(labels, d), want, 1e-6);
  // ECN alone trains with the plain BCE.
  EXPECT_NEAR(ecn->Loss(labels, d), l_ecn, 1e-6);
}

TEST(FcnModelTest, DimNotAMultipleOfTwiceTheHeadsIsInvalidArgument) {
  auto model = CreateModel(Config("type: FCN fcn { num_heads: 3 }"), 3, 4, 1);
  EXPECT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(model.status().message().find("model.fcn.num_heads"), std::string::npos);
  EXPECT_TRUE(CreateModel(Config("type: FCN fcn { num_heads: 3 }"), 3, 6, 1).ok());
}

}  // namespace
}  // namespace ctrps::nn::testing
