#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "worker/nn/models/model_test_util.h"

namespace ctrps::nn::testing {
namespace {

TEST(WideDeepModelTest, GradientsMatchFiniteDifferences) {
  CheckModelGradients("type: WIDE_DEEP hidden_units: [6, 5]");
}

}  // namespace
}  // namespace ctrps::nn::testing
