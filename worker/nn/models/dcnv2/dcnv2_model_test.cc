#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "worker/nn/models/model_test_util.h"

namespace ctrps::nn::testing {
namespace {

TEST(DcnV2ModelTest, GradientsMatchFiniteDifferences) {
  CheckModelGradients("type: DCNV2 hidden_units: [6, 5] num_cross_layers: 2");
  CheckModelGradients("type: DCNV2 hidden_units: [6] num_cross_layers: 2 stacked: true");
  CheckModelGradients("type: DCNV2 hidden_units: [6] num_cross_layers: 2 low_rank: 3");
  CheckModelGradients(
      "type: DCNV2 hidden_units: [6] num_cross_layers: 2 low_rank: 3 stacked: true");
  CheckModelGradients("type: DCNV2 num_cross_layers: 2");
}

}  // namespace
}  // namespace ctrps::nn::testing
