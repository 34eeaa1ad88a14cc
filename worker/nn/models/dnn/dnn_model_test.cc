#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "worker/nn/models/model_test_util.h"

namespace ctrps::nn::testing {
namespace {

TEST(DnnModelTest, GradientsMatchFiniteDifferences) {
  CheckModelGradients("type: DNN hidden_units: [6, 5]");
  CheckModelGradients("type: DNN hidden_units: [6, 5] batch_norm: true activation: 'prelu'");
  CheckModelGradients("type: DNN hidden_units: [6] batch_norm: true activation: 'dice'");
  CheckModelGradients("type: DNN hidden_units: [6] batch_norm: true activation: 'dice'",
                      /*training=*/false);
}

TEST(DnnModelTest, DropoutOnlyInTraining) {
  auto model = Make("type: DNN hidden_units: [16, 16] dropout: 0.5");
  std::vector<float> emb = RandomValues(kBatch * kFields * kDim, 1);
  ModelInput in{kBatch, kFields, kDim, emb.data(), nullptr};
  std::vector<float> e1(kBatch), e2(kBatch), t1(kBatch), t2(kBatch);
  model->Forward(in, false, e1.data());
  model->Forward(in, false, e2.data());
  model->Forward(in, true, t1.data());
  model->Forward(in, true, t2.data());
  EXPECT_EQ(e1, e2);
  EXPECT_NE(t1, t2);
}

TEST(DnnModelTest, EvaluationDoesNotDependOnTheRestOfTheBatch) {
  auto model = Make("type: DNN hidden_units: [8] batch_norm: true activation: 'dice'");
  std::vector<float> emb = RandomValues(kBatch * kFields * kDim, 1);
  std::vector<float> logits(kBatch), single(1);
  model->Forward({kBatch, kFields, kDim, emb.data(), nullptr}, true, logits.data());
  model->Forward({kBatch, kFields, kDim, emb.data(), nullptr}, false, logits.data());
  model->Forward({1, kFields, kDim, emb.data(), nullptr}, false, single.data());
  EXPECT_FLOAT_EQ(single[0], logits[0]);
}

}  // namespace
}  // namespace ctrps::nn::testing
