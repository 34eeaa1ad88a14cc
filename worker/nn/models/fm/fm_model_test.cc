#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "worker/nn/models/model_test_util.h"

namespace ctrps::nn::testing {
namespace {

TEST(FmModelTest, GradientsMatchFiniteDifferences) { CheckModelGradients("type: FM"); }

TEST(FmModelTest, LogitIsFirstOrderPlusPairwiseInteractions) {
  std::unique_ptr<CtrModel> model = Make("type: FM");
  model->params().values()[0] = 0.25f;  // the bias
  std::vector<float> emb = RandomValues(kBatch * kFields * kDim, 1);
  std::vector<float> linear = RandomValues(kBatch * kFields, 2);
  std::vector<float> logits(kBatch);
  model->Forward({kBatch, kFields, kDim, emb.data(), linear.data()}, false, logits.data());
  for (int b = 0; b < kBatch; ++b) {
    double ref = 0.25;
    for (int f = 0; f < kFields; ++f) ref += linear[b * kFields + f];
    for (int i = 0; i < kFields; ++i)
      for (int j = i + 1; j < kFields; ++j)
        for (int k = 0; k < kDim; ++k)
          ref += double{emb[(b * kFields + i) * kDim + k]} * emb[(b * kFields + j) * kDim + k];
    EXPECT_NEAR(logits[b], ref, 1e-5);
  }
}

}  // namespace
}  // namespace ctrps::nn::testing
