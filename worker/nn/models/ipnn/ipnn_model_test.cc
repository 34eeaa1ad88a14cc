#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "worker/nn/models/model_test_util.h"

namespace ctrps::nn::testing {
namespace {

constexpr int kPairs = kFields * (kFields - 1) / 2;

TEST(IpnnModelTest, GradientsMatchFiniteDifferences) {
  CheckModelGradients("type: IPNN hidden_units: [6, 5]");
  CheckModelGradients("type: IPNN hidden_units: [6] batch_norm: true");
  CheckModelGradients("type: IPNN");
}

TEST(IpnnModelTest, MlpReadsTheEmbeddingsThenThePairProducts) {
  // No hidden layer: logit = w . [emb, products] + b. Weight 1 on the
  // products and 0 on the embeddings gives b + sum_{i<j} <e_i, e_j>.
  std::unique_ptr<CtrModel> model = Make("type: IPNN");
  ASSERT_NE(model, nullptr);
  EXPECT_FALSE(model->NeedsLinear());
  const auto& params = model->params().parameters();
  ASSERT_EQ(params.size(), 2u);
  for (const ParamInfo& p : params) {
    float* v = model->params().value(p.slot);
    if (p.slot.size == 1) {
      v[0] = 0.25f;
      continue;
    }
    ASSERT_EQ(p.slot.size, kFields * kDim + kPairs) << p.name;
    for (int k = 0; k < p.slot.size; ++k) v[k] = k < kFields * kDim ? 0.0f : 1.0f;
  }
  std::vector<float> emb = RandomValues(kBatch * kFields * kDim, 1);
  std::vector<float> logits(kBatch);
  model->Forward({kBatch, kFields, kDim, emb.data(), nullptr}, false, logits.data());
  for (int b = 0; b < kBatch; ++b) {
    double ref = 0.25;
    for (int i = 0; i < kFields; ++i)
      for (int j = i + 1; j < kFields; ++j)
        for (int k = 0; k < kDim; ++k)
          ref += double{emb[(b * kFields + i) * kDim + k]} * emb[(b * kFields + j) * kDim + k];
    EXPECT_NEAR(logits[b], ref, 1e-5);
  }
}

TEST(IpnnModelTest, ParameterCountAndFlopsFollowTheComposition) {
  const int in = kFields * kDim + kPairs;  // 15
  auto model = Make("type: IPNN hidden_units: [8]");
  EXPECT_EQ(model->params().num_parameters(), (in * 8 + 8) + (8 + 1));
  EXPECT_EQ(model->FlopsPerSample(), 2 * (in * 8 + 8) + 2 * kPairs * kDim);
}

TEST(IpnnModelTest, OneFieldIsInvalidArgument) {
  auto model = CreateModel(Config("type: IPNN"), 1, kDim, 1);
  EXPECT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ctrps::nn::testing
