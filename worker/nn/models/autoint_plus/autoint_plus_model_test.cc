#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "worker/nn/models/model_test_util.h"

namespace ctrps::nn::testing {
namespace {

TEST(AutoIntPlusModelTest, GradientsMatchFiniteDifferences) {
  CheckModelGradients("type: AUTOINT_PLUS hidden_units: [6, 5]");
  CheckModelGradients(
      "type: AUTOINT_PLUS hidden_units: [6] batch_norm: true autoint { attention_layers: 2 "
      "attention_dim: 4 num_heads: 2 use_scale: true layer_norm: true }");
}

TEST(AutoIntPlusModelTest, LogitIsAutoIntsPlusTheDnns) {
  // Same seed: the attention layers and fc come first, with the same
  // parameters as AUTOINT's; zeroing the DNN's output layer leaves AutoInt's
  // logit.
  const std::string autoint = "autoint { attention_layers: 2 attention_dim: 4 num_heads: 2 }";
  auto plain = Make("type: AUTOINT " + autoint);
  auto plus = Make("type: AUTOINT_PLUS hidden_units: [5] " + autoint);
  ASSERT_NE(plain, nullptr);
  ASSERT_NE(plus, nullptr);
  const auto& pp = plain->params().parameters();
  const auto& qp = plus->params().parameters();
  ASSERT_EQ(qp.size(), pp.size() + 4);  // + dnn hidden (w, b) and output (w, b)
  for (size_t i = 0; i < pp.size(); ++i) {
    ASSERT_EQ(pp[i].name, qp[i].name);
    ASSERT_EQ(pp[i].slot.size, qp[i].slot.size);
    std::copy_n(plain->params().value(pp[i].slot), pp[i].slot.size,
                plus->params().value(qp[i].slot));
  }
  std::fill_n(plus->params().value(qp[qp.size() - 2].slot), 5, 0.0f);
  plus->params().value(qp.back().slot)[0] = 0.75f;
  std::vector<float> emb = RandomValues(kBatch * kFields * kDim, 1);
  std::vector<float> a(kBatch), b(kBatch);
  plain->Forward({kBatch, kFields, kDim, emb.data(), nullptr}, false, a.data());
  plus->Forward({kBatch, kFields, kDim, emb.data(), nullptr}, false, b.data());
  for (int i = 0; i < kBatch; ++i) EXPECT_NEAR(b[i], a[i] + 0.75f, 1e-5);
}

}  // namespace
}  // namespace ctrps::nn::testing
