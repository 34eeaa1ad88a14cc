#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "worker/nn/models/model_test_util.h"

namespace ctrps::nn::testing {
namespace {

TEST(AutoIntModelTest, GradientsMatchFiniteDifferences) {
  CheckModelGradients("type: AUTOINT");
  CheckModelGradients(
      "type: AUTOINT autoint { attention_layers: 2 attention_dim: 6 num_heads: 2 use_scale: true "
      "layer_norm: true }");
  CheckModelGradients("type: AUTOINT autoint { attention_layers: 1 attention_dim: 4 }");
  CheckModelGradients("type: AUTOINT autoint { attention_layers: 3 use_residual: false }");
  CheckModelGradients("type: AUTOINT autoint { attention_dropout: 0.2 }", /*training=*/false);
}

TEST(AutoIntModelTest, ParametersAreTheLayersProjectionsAndTheOutputLayer) {
  // kDim 4 -> 8: W_q, W_k, W_v and W_res of 8 x 4, then 8 -> 8: three of 8 x 8
  // (the identity residual), layer norm 2 x 8 each; fc F * 8 + 1.
  auto model = Make(
      "type: AUTOINT autoint { attention_layers: 2 attention_dim: 8 num_heads: 2 "
      "layer_norm: true }");
  ASSERT_NE(model, nullptr);
  EXPECT_FALSE(model->NeedsLinear());
  EXPECT_EQ(model->params().num_parameters(), 4 * 8 * kDim + 16 + 3 * 8 * 8 + 16 + kFields * 8 + 1);
  EXPECT_EQ(model->FlopsPerSample(), (2 * 4 * kFields * kDim * 8 + 4 * kFields * kFields * 8) +
                                         (2 * 3 * kFields * 8 * 8 + 4 * kFields * kFields * 8) +
                                         2 * kFields * 8);
}

TEST(AutoIntModelTest, AttentionDimNotAMultipleOfTheHeadsIsInvalidArgument) {
  auto model =
      CreateModel(Config("type: AUTOINT autoint { attention_dim: 6 num_heads: 4 }"), 3, 4, 1);
  EXPECT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(model.status().message().find("model.autoint.attention_dim"), std::string::npos);
}

TEST(AutoIntModelTest, ZeroAttentionLayersIsOutOfRange) {
  auto model = CreateModel(Config("type: AUTOINT autoint { attention_layers: 0 }"), 3, 4, 1);
  EXPECT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ctrps::nn::testing
