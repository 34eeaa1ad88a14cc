#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "worker/nn/models/model_test_util.h"

namespace ctrps::nn::testing {
namespace {

constexpr char kTwoLayers[] =
    "type: FGCNN hidden_units: [6] conv_channels: [2, 3] conv_kernel_heights: [3, 1] "
    "pooling_sizes: [2, 1] recombined_channels: [1, 2]";

TEST(FgcnnModelTest, GradientsMatchFiniteDifferences) {
  CheckModelGradients(kTwoLayers);
  CheckModelGradients(std::string(kTwoLayers) + " conv_batch_norm: false batch_norm: true");
  CheckModelGradients(std::string(kTwoLayers) + " conv_activation: \"relu\"");
  CheckModelGradients(kTwoLayers, /*training=*/false);
  // Field 2 feeds generation only; the classifier reads fields 0 and 1.
  CheckModelGradients(
      "type: FGCNN hidden_units: [5] conv_channels: [2] conv_kernel_heights: [3] "
      "pooling_sizes: [1] recombined_channels: [1] generation_fields: [2]");
}

TEST(FgcnnModelTest, NewFeaturesJoinTheRawOnesInTheInnerProducts) {
  // Heights 3 -> 2 -> 2: 2 * 1 + 2 * 2 = 6 new fields, 9 in all, so the MLP
  // reads 9 * dim values and 36 pair products.
  auto model = Make(std::string(kTwoLayers) + " conv_batch_norm: false");
  ASSERT_NE(model, nullptr);
  const int64_t conv = (2 * 3 * 1 + 2) + (3 * 1 * 2 + 3);
  const int64_t recombine = (2 * kDim * 2) * (2 * 1 * kDim) + 2 * 1 * kDim +
                            (2 * kDim * 3) * (2 * 2 * kDim) + 2 * 2 * kDim;
  const int64_t mlp_in = 9 * kDim + 36;
  EXPECT_EQ(model->params().num_parameters(), conv + recombine + (mlp_in * 6 + 6) + (6 + 1));
}

TEST(FgcnnModelTest, GenerationFieldsDoNotFeedTheClassifierDirectly) {
  // With zero convolution weights and biases the new features are tanh(0) =
  // 0 whatever the generation field holds.
  auto model = Make(
      "type: FGCNN hidden_units: [4] conv_channels: [2] conv_kernel_heights: [1] "
      "pooling_sizes: [1] recombined_channels: [1] generation_fields: [2]",
      3);
  ParameterArena& arena = model->params();
  for (const ParamInfo& p : arena.parameters()) {
    if (p.name.find(".conv.") != std::string::npos) {
      std::fill_n(arena.value(p.slot), p.slot.size, 0.0f);
    }
  }
  std::vector<float> emb = RandomValues(kBatch * kFields * kDim, 1);
  std::vector<float> a(kBatch), b(kBatch);
  ModelInput in{kBatch, kFields, kDim, emb.data(), nullptr};
  model->Forward(in, false, a.data());
  for (int s = 0; s < kBatch; ++s) emb[(s * kFields + 2) * kDim + 1] += 2.0f;
  model->Forward(in, false, b.data());
  for (int i = 0; i < kBatch; ++i) EXPECT_FLOAT_EQ(a[i], b[i]);
}

TEST(FgcnnModelTest, InconsistentLayerListsAreInvalidArgument) {
  for (const char* text : {
           "type: FGCNN conv_channels: [2, 2] conv_kernel_heights: [3] pooling_sizes: [2, 2] "
           "recombined_channels: [1, 1]",
           "type: FGCNN conv_channels: [2] conv_kernel_heights: [2] pooling_sizes: [2] "
           "recombined_channels: [1]",
           "type: FGCNN conv_channels: [2] conv_kernel_heights: [3] pooling_sizes: [2] "
           "recombined_channels: [1] generation_fields: [0, 1, 2]",
           "type: FGCNN conv_channels: [2] conv_kernel_heights: [3] pooling_sizes: [2] "
           "recombined_channels: [1] conv_activation: \"swish\"",
       }) {
    EXPECT_EQ(CreateModel(Config(text), kFields, kDim, 1).status().code(),
              absl::StatusCode::kInvalidArgument)
        << text;
  }
}

}  // namespace
}  // namespace ctrps::nn::testing
