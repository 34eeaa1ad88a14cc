#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "worker/nn/models/model_test_util.h"

namespace ctrps::nn::testing {
namespace {

TEST(DinModelTest, GradientsMatchFiniteDifferences) {
  CheckSequenceModelGradients(
      "type: DIN hidden_units: [6, 5] attention_hidden_units: [8, 4] attention_activation: 'relu'");
  CheckSequenceModelGradients(
      "type: DIN hidden_units: [6] activation: 'dice' attention_hidden_units: [8, 4] "
      "attention_activation: 'dice'");
  CheckSequenceModelGradients(
      "type: DIN hidden_units: [6] activation: 'dice' attention_hidden_units: [8] "
      "attention_activation: 'dice'",
      /*training=*/false);
  CheckSequenceModelGradients(
      "type: DIN hidden_units: [6] attention_hidden_units: [4] attention_activation: 'prelu'");
}

TEST(DinModelTest, AttentionDependsOnTheTarget) {
  auto din = MakeSequenceModel("type: DIN hidden_units: [8] attention_hidden_units: [4]");
  RandomizeParameters(&din->params(), 3);
  SequenceData data;
  std::vector<float> a(kBatch), b(kBatch);
  din->Forward(data.Input(), false, a.data());
  // A target with the same MLP input but a different query: only through
  // attention can the logit change, so zero the MLP's weights on field 0.
  const auto& params = din->params().parameters();
  auto w = std::find_if(params.begin(), params.end(),
                        [](const ParamInfo& p) { return p.name == "dnn.0.linear.weight"; });
  ASSERT_NE(w, params.end());  // [8, F * D]
  for (int u = 0; u < 8; ++u) {
    for (int j = 0; j < kDim; ++j) din->params().value(w->slot)[u * kFields * kDim + j] = 0.0f;
  }
  din->Forward(data.Input(), false, a.data());
  for (int j = 0; j < kDim; ++j) data.emb[(0 * kFields + 0) * kDim + j] += 0.5f;
  din->Forward(data.Input(), false, b.data());
  EXPECT_NE(a[0], b[0]);
  EXPECT_FLOAT_EQ(a[2], b[2]);
}

}  // namespace
}  // namespace ctrps::nn::testing
