#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "worker/nn/models/model_test_util.h"

namespace ctrps::nn::testing {
namespace {

TEST(DeepFmModelTest, GradientsMatchFiniteDifferences) {
  CheckModelGradients("type: DEEPFM hidden_units: [6, 5]");
  CheckModelGradients("type: DEEPFM hidden_units: [5] batch_norm: true");
}

TEST(DeepFmModelTest, FlopsCountTheMlpAndFm) {
  auto model = Make("type: DEEPFM hidden_units: [8, 8]");
  const int d = kFields * kDim;
  EXPECT_EQ(model->FlopsPerSample(), 2 * (d * 8 + 8 * 8 + 8 * 1) + (2 * kFields * kDim + 2 * kDim));
}

}  // namespace
}  // namespace ctrps::nn::testing
