#include "worker/half.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>

#include "gtest/gtest.h"

namespace ctrps {
namespace {

TEST(HalfTest, EveryHalfRoundTripsExactly) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = HalfToFloat(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(HalfToFloat(FloatToHalf(f)))) << h;
      continue;
    }
    EXPECT_EQ(FloatToHalf(f), h) << "half 0x" << std::hex << h << " = " << f;
  }
}

TEST(HalfTest, KnownValues) {
  EXPECT_EQ(FloatToHalf(0.0f), 0x0000);
  EXPECT_EQ(FloatToHalf(-0.0f), 0x8000);
  EXPECT_EQ(FloatToHalf(1.0f), 0x3c00);
  EXPECT_EQ(FloatToHalf(-2.0f), 0xc000);
  EXPECT_EQ(FloatToHalf(65504.0f), 0x7bff);  // largest half
  EXPECT_EQ(FloatToHalf(65519.0f), 0x7bff);  // below the midpoint to inf
  EXPECT_EQ(FloatToHalf(65520.0f), 0x7c00);  // the midpoint rounds to even: inf
  EXPECT_EQ(FloatToHalf(1e10f), 0x7c00);
  EXPECT_EQ(FloatToHalf(-std::numeric_limits<float>::infinity()), 0xfc00);
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -14)), 0x0400);         // smallest normal
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -24)), 0x0001);         // smallest subnormal
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -25)), 0x0000);         // half of it: tie to even (0)
  EXPECT_EQ(FloatToHalf(std::ldexp(3.0f, -25)), 0x0002);         // 1.5 steps: tie to even (2)
  EXPECT_EQ(FloatToHalf(1.0f + std::ldexp(1.0f, -11)), 0x3c00);  // tie: even mantissa stays
  EXPECT_EQ(FloatToHalf(1.0f + std::ldexp(3.0f, -11)), 0x3c02);  // tie: odd mantissa goes up
  const uint16_t nan = FloatToHalf(std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(nan & 0x7c00, 0x7c00);
  EXPECT_NE(nan & 0x3ff, 0);
  EXPECT_EQ(FloatToHalf(-std::numeric_limits<float>::quiet_NaN()) & 0x8000, 0x8000);
}

// Against a definition: the nearest half, ties to the even one.
TEST(HalfTest, RoundsRandomFloatsToNearestEven) {
  std::mt19937 rng(5);
  for (int i = 0; i < 200000; ++i) {
    // Magnitudes from 2^-26 to 2^16, both signs.
    const float x = std::ldexp(std::uniform_real_distribution<float>(1.0f, 2.0f)(rng),
                               static_cast<int>(rng() % 43) - 26) *
                    (rng() % 2 ? 1.0f : -1.0f);
    const uint16_t h = FloatToHalf(x);
    const double got = HalfToFloat(h);
    if (std::isinf(got)) {
      EXPECT_GE(std::fabs(x), 65520.0f) << x;
      continue;
    }
    const double err = std::fabs(got - x);
    for (int step : {-1, 1}) {
      const uint16_t other = static_cast<uint16_t>(h + step);
      if ((other & 0x7fff) >= 0x7c00 || ((h & 0x7fff) == 0 && step < 0)) continue;
      const double other_err = std::fabs(static_cast<double>(HalfToFloat(other)) - x);
      EXPECT_LE(err, other_err) << x;
      if (err == other_err) {
        EXPECT_EQ(h & 1, 0) << "tie not to even at " << x;
      }
    }
  }
}

}  // namespace
}  // namespace ctrps
