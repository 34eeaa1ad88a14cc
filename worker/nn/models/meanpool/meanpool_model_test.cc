#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "worker/nn/models/model_test_util.h"

namespace ctrps::nn::testing {
namespace {

TEST(MeanPoolModelTest, GradientsMatchFiniteDifferences) {
  CheckSequenceModelGradients("type: MEANPOOL hidden_units: [6, 5]");
  CheckSequenceModelGradients("type: MEANPOOL hidden_units: [6] batch_norm: true");
}

TEST(MeanPoolModelTest, IsDnnOverTheMeanOfTheHistory) {
  // Same seed, same MLP registrations: identical parameters.
  auto meanpool = MakeSequenceModel("type: MEANPOOL hidden_units: [8, 4]", 9);
  auto dnn = Make("type: DNN hidden_units: [8, 4]", 9);
  SequenceData data;
  std::vector<float> pooled = data.emb;
  for (int b = 0; b < kBatch; ++b) {
    for (int j = 0; j < kDim; ++j) {
      double s1 = 0, s2 = 0;
      for (int l = 0; l < data.len1[b]; ++l) s1 += data.seq1[(b * kLen1 + l) * kDim + j];
      for (int l = 0; l < data.len2[b]; ++l) s2 += data.seq2[(b * kLen2 + l) * kDim + j];
      pooled[(b * kFields + 1) * kDim + j] = data.len1[b] ? s1 / data.len1[b] : 0.0;
      pooled[(b * kFields + 2) * kDim + j] = data.len2[b] ? s2 / data.len2[b] : 0.0;
    }
  }
  std::vector<float> a(kBatch), b(kBatch);
  meanpool->Forward(data.Input(), false, a.data());
  dnn->Forward({kBatch, kFields, kDim, pooled.data(), nullptr}, false, b.data());
  for (int i = 0; i < kBatch; ++i) EXPECT_NEAR(a[i], b[i], 1e-5);
}

}  // namespace
}  // namespace ctrps::nn::testing
