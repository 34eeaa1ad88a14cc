#include "common/all_finite.h"

#include <cmath>
#include <limits>
#include <vector>

#include "gtest/gtest.h"

namespace ctrps {
namespace {

TEST(AllFiniteTest, FindsANanOrInfinityAnywhere) {
  std::vector<float> v(37, 1.0f);
  v[3] = std::numeric_limits<float>::max();
  v[4] = -std::numeric_limits<float>::max();
  v[5] = std::numeric_limits<float>::denorm_min();
  v[6] = -0.0f;
  EXPECT_TRUE(AllFinite(v.data(), v.size()));
  EXPECT_TRUE(AllFinite(v.data(), 0));
  for (float bad : {std::nanf(""), -std::nanf(""), std::numeric_limits<float>::infinity(),
                    -std::numeric_limits<float>::infinity()}) {
    for (size_t at : {size_t{0}, size_t{17}, v.size() - 1}) {
      std::vector<float> w = v;
      w[at] = bad;
      EXPECT_FALSE(AllFinite(w.data(), w.size())) << bad << " at " << at;
      EXPECT_TRUE(AllFinite(w.data(), at)) << "only before " << at;
    }
  }
}

}  // namespace
}  // namespace ctrps
