#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "worker/nn/models/model_test_util.h"

namespace ctrps::nn::testing {
namespace {

TEST(FinalMlpModelTest, GradientsMatchFiniteDifferences) {
  CheckModelGradients(
      "type: FINALMLP mlp1_hidden_units: [6, 4] mlp2_hidden_units: [6] fs_hidden_units: [5]");
  CheckModelGradients(
      "type: FINALMLP mlp1_hidden_units: [6, 4] mlp2_hidden_units: [8] num_heads: 2 "
      "mlp1_batch_norm: true");
  CheckModelGradients(
      "type: FINALMLP mlp1_hidden_units: [4] mlp2_hidden_units: [4] use_feature_selection: false");
}

TEST(FinalMlpModelTest, ContextFieldsGradientsMatchFiniteDifferences) {
  // Field 2 is the context of gate 1 and field 1 of gate 2; the streams read field 0.
  CheckModelGradients(
      "type: FINALMLP mlp1_hidden_units: [6] mlp2_hidden_units: [4] fs_hidden_units: [5] "
      "fs1_context_fields: [2] fs2_context_fields: [1] num_heads: 2");
  CheckModelGradients(
      "type: FINALMLP mlp1_hidden_units: [6] mlp2_hidden_units: [4] fs_hidden_units: [5] "
      "fs1_context_fields: [2, 1]");
}

TEST(FinalMlpModelTest, ContextFieldsDoNotFeedTheStreams) {
  // With zero context-MLP weights every gate is 2 * sigmoid(0) = 1 whatever
  // the context, so changing a context field's embedding leaves the logits.
  auto model = Make(
      "type: FINALMLP mlp1_hidden_units: [4] mlp2_hidden_units: [4] fs_hidden_units: [3] "
      "fs1_context_fields: [2] fs2_context_fields: [2]",
      5);
  ParameterArena& arena = model->params();
  for (const ParamInfo& p : arena.parameters()) {
    if (p.name.rfind("fs", 0) == 0) std::fill_n(arena.value(p.slot), p.slot.size, 0.0f);
  }
  std::vector<float> emb = RandomValues(kBatch * kFields * kDim, 1);
  std::vector<float> a(kBatch), b(kBatch);
  ModelInput in{kBatch, kFields, kDim, emb.data(), nullptr};
  model->Forward(in, false, a.data());
  for (int s = 0; s < kBatch; ++s) emb[(s * kFields + 2) * kDim] += 3.0f;
  model->Forward(in, false, b.data());
  for (int i = 0; i < kBatch; ++i) EXPECT_FLOAT_EQ(a[i], b[i]);
  // A stream field does change them.
  for (int s = 0; s < kBatch; ++s) emb[(s * kFields + 0) * kDim] += 3.0f;
  model->Forward(in, false, b.data());
  EXPECT_NE(a[0], b[0]);
}

TEST(FinalMlpModelTest, BadContextFieldsAreRejected) {
  ModelConfig config = Config(
      "type: FINALMLP mlp1_hidden_units: [4] mlp2_hidden_units: [4] fs1_context_fields: [3]");
  EXPECT_EQ(CreateModel(config, kFields, kDim, 1).status().code(),
            absl::StatusCode::kInvalidArgument);
  config = Config(
      "type: FINALMLP mlp1_hidden_units: [4] mlp2_hidden_units: [4] fs1_context_fields: [1, 1]");
  EXPECT_EQ(CreateModel(config, kFields, kDim, 1).status().code(),
            absl::StatusCode::kInvalidArgument);
  config = Config(
      "type: FINALMLP mlp1_hidden_units: [4] mlp2_hidden_units: [4] fs1_context_fields: [0, 1] "
      "fs2_context_fields: [2]");
  EXPECT_EQ(CreateModel(config, kFields, kDim, 1).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(FinalMlpModelTest, FeatureSelectionStartsAsIdentityGate) {
  // FuxiCTR: a zero context through ReLU layers with zero biases gives
  // 2 * sigmoid(0) = 1, so the streams start from the raw embeddings; with
  // feature selection off the logits must then be the same.
  auto with_fs = Make("type: FINALMLP mlp1_hidden_units: [4] mlp2_hidden_units: [4]", 5);
  auto without = Make(
      "type: FINALMLP mlp1_hidden_units: [4] mlp2_hidden_units: [4] use_feature_selection: false",
      5);
  std::vector<float> emb = RandomValues(kBatch * kFields * kDim, 1);
  std::vector<float> a(kBatch), b(kBatch);
  ModelInput in{kBatch, kFields, kDim, emb.data(), nullptr};
  with_fs->Forward(in, false, a.data());
  // Copy the MLP and fusion parameters (registered after the gates) across.
  const auto& pa = with_fs->params().parameters();
  const auto& pb = without->params().parameters();
  for (size_t i = 0; i < pb.size(); ++i) {
    const ParamInfo& src = pa[pa.size() - pb.size() + i];
    ASSERT_EQ(src.name, pb[i].name);
    std::copy(with_fs->params().value(src.slot), with_fs->params().value(src.slot) + src.slot.size,
              without->params().value(pb[i].slot));
  }
  without->Forward(in, false, b.data());
  for (int i = 0; i < kBatch; ++i) EXPECT_NEAR(a[i], b[i], 1e-5);
}

}  // namespace
}  // namespace ctrps::nn::testing
