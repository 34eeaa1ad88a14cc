#include "worker/nn/dense_optimizer.h"

#include <cmath>
#include <vector>

#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"

namespace ctrps::nn {
namespace {

DenseOptimizerConfig Config(const std::string& text) {
  DenseOptimizerConfig config;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &config)) << text;
  return config;
}

TEST(DenseOptimizerTest, AdamUpdateMatchesFormulaOverThreeSteps) {
  auto opt = *DenseOptimizer::Create(
      Config("kind: ADAM learning_rate: 0.01 beta1: 0.9 beta2: 0.999 epsilon: 1e-8 l2: 0.1"), 3);
  std::vector<float> w = {0.5f, -1.0f, 0.0f};
  const std::vector<std::vector<float>> grads = {
      {0.1f, -0.2f, 0.0f}, {0.3f, 0.05f, 0.0f}, {-0.4f, 0.1f, 0.0f}};
  std::vector<double> ref(w.begin(), w.end()), m(3, 0.0), v(3, 0.0);
  for (int t = 1; t <= 3; ++t) {
    opt->Step(w, grads[t - 1]);
    for (int i = 0; i < 3; ++i) {
      const double g = grads[t - 1][i] + 0.1 * ref[i];
      m[i] = 0.9 * m[i] + 0.1 * g;
      v[i] = 0.999 * v[i] + 0.001 * g * g;
      const double m_hat = m[i] / (1 - std::pow(0.9, t));
      const double v_hat = v[i] / (1 - std::pow(0.999, t));
      ref[i] -= 0.01 * m_hat / (std::sqrt(v_hat) + 1e-8);
      EXPECT_NEAR(w[i], ref[i], 1e-6 * std::max(1.0, std::fabs(ref[i]))) << "step " << t;
    }
  }
  EXPECT_EQ(opt->step(), 3);
  EXPECT_EQ(opt->state().size(), 6u);
  // A parameter with zero value and zero gradient (arena padding) stays 0.
  EXPECT_EQ(w[2], 0.0f);
}

TEST(DenseOptimizerTest, AdamFirstStepMovesEachWeightByAboutTheLearningRate) {
  auto opt = *DenseOptimizer::Create(Config("kind: ADAM learning_rate: 0.001"), 2);
  std::vector<float> w = {1.0f, 1.0f};
  const std::vector<float> g = {5.0f, -0.01f};
  opt->Step(w, g);
  EXPECT_NEAR(w[0], 1.0f - 0.001f, 1e-6);
  EXPECT_NEAR(w[1], 1.0f + 0.001f, 1e-6);
}

TEST(DenseOptimizerTest, AdagradUpdateMatchesFormula) {
  auto opt = *DenseOptimizer::Create(Config("kind: ADAGRAD learning_rate: 0.1 epsilon: 1e-10"), 2);
  std::vector<float> w = {1.0f, -2.0f};
  double s0 = 0, ref0 = 1.0;
  for (float g0 : {0.5f, -0.25f, 1.0f}) {
    opt->Step(w, std::vector<float>{g0, 0.0f});
    s0 += double{g0} * g0;
    ref0 -= 0.1 * g0 / (std::sqrt(s0) + 1e-10);
    EXPECT_NEAR(w[0], ref0, 1e-6);
  }
  EXPECT_EQ(w[1], -2.0f);
}

TEST(DenseOptimizerTest, SgdWithL2DecaysWeights) {
  auto opt = *DenseOptimizer::Create(Config("kind: SGD learning_rate: 0.5 l2: 0.1"), 2);
  std::vector<float> w = {2.0f, 1.0f};
  opt->Step(w, std::vector<float>{1.0f, 0.0f});
  EXPECT_FLOAT_EQ(w[0], 2.0f - 0.5f * (1.0f + 0.2f));
  EXPECT_FLOAT_EQ(w[1], 1.0f - 0.5f * 0.1f);
  EXPECT_TRUE(opt->state().empty());
}

TEST(DenseOptimizerTest, LearningRateCanBeLowered) {
  auto opt = *DenseOptimizer::Create(Config("kind: SGD learning_rate: 1"), 1);
  opt->set_learning_rate(0.1f);
  std::vector<float> w = {1.0f};
  opt->Step(w, std::vector<float>{1.0f});
  EXPECT_FLOAT_EQ(w[0], 0.9f);
}

TEST(DenseOptimizerTest, BadConfigIsInvalidArgument) {
  for (const std::string text : {"learning_rate: 0", "learning_rate: -1", "l2: -0.1", "beta1: 1.0",
                                 "beta2: -0.5", "epsilon: -1"}) {
    EXPECT_EQ(DenseOptimizer::Create(Config(text), 4).status().code(),
              absl::StatusCode::kInvalidArgument)
        << text;
  }
}

}  // namespace
}  // namespace ctrps::nn
