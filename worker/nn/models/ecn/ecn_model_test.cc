#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "worker/nn/models/model_test_util.h"

namespace ctrps::nn::testing {
namespace {

TEST(EcnModelTest, GradientsMatchFiniteDifferences) {
  CheckModelGradients("type: ECN fcn { deep_net_dropout: 0 }");
  CheckModelGradients("type: ECN fcn { num_heads: 2 layer_norm: false deep_net_dropout: 0 }");
  CheckModelGradients("type: ECN", /*training=*/false);
}

TEST(EcnModelTest, ParametersAreTheCrossLayersAndTheSharedOutputLayer) {
  // 2 heads of d = F * kDim / 2 = 6: per layer W 3 x 6, b 6, layer norm 2 x 3.
  auto model = Make("type: ECN fcn { num_heads: 2 num_deep_cross_layers: 3 }");
  ASSERT_NE(model, nullptr);
  EXPECT_EQ(model->params().num_parameters(), 3 * (18 + 6 + 6) + 6 + 1);
  EXPECT_EQ(model->FlopsPerSample(), 3 * 2 * 2 * 18 + 2 * 2 * 6);
}

}  // namespace
}  // namespace ctrps::nn::testing
