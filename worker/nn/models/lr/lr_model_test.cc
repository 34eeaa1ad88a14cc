#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "worker/nn/models/model_test_util.h"

namespace ctrps::nn::testing {
namespace {

TEST(LrModelTest, GradientsMatchFiniteDifferences) { CheckModelGradients("type: LR"); }

}  // namespace
}  // namespace ctrps::nn::testing
