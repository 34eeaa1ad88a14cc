#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "worker/nn/models/model_test_util.h"

namespace ctrps::nn::testing {
namespace {

TEST(DcnModelTest, GradientsMatchFiniteDifferences) {
  CheckModelGradients("type: DCN hidden_units: [6, 5] num_cross_layers: 2");
  CheckModelGradients("type: DCN num_cross_layers: 3");
}

}  // namespace
}  // namespace ctrps::nn::testing
