// IEEE 754 half precision (binary16) <-> float, in software, for fp16
// exports. FloatToHalf rounds to nearest, ties to even; values past the half
// range become infinities, NaNs stay NaN (quiet), subnormals are kept.
// HalfToFloat is exact. Both are pure and thread-safe.
#ifndef CTRPS_WORKER_HALF_H_
#define CTRPS_WORKER_HALF_H_

#include <bit>
#include <cstdint>

namespace ctrps {

inline uint16_t FloatToHalf(float f) {
  uint32_t x = std::bit_cast<uint32_t>(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  x &= 0x7fffffffu;
  if (x >= 0x7f800000u) {  // inf or NaN (NaN keeps its top payload bits, made quiet)
    return static_cast<uint16_t>(sign | 0x7c00u |
                                 (x > 0x7f800000u ? 0x200u | ((x >> 13) & 0x3ffu) : 0u));
  }
  if (x >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // >= 65520 rounds to inf
  if (x < 0x38800000u) {
    // Below the smallest normal half (2^-14): adding 0.5 puts the value's
    // multiple of 2^-24 (the half subnormal step) in the low mantissa bits,
    // rounded to nearest even by the float addition itself.
    const float shifted = std::bit_cast<float>(x) + 0.5f;
    return static_cast<uint16_t>(sign | (std::bit_cast<uint32_t>(shifted) - 0x3f000000u));
  }
  // Normal: rebias the exponent (127 -> 15) and round the 13 dropped bits to
  // nearest even; a carry into the exponent is the correct rounding.
  const uint32_t mantissa_odd = (x >> 13) & 1u;
  x += 0xc8000fffu + mantissa_odd;
  return static_cast<uint16_t>(sign | (x >> 13));
}

inline float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  const uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0) {  // zero or subnormal: mantissa * 2^-24, exact in float
    const float magnitude = static_cast<float>(mantissa) * 5.9604644775390625e-8f;
    return std::bit_cast<float>(sign | std::bit_cast<uint32_t>(magnitude));
  }
  if (exponent == 31) return std::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13));
  return std::bit_cast<float>(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

}  // namespace ctrps

#endif  // CTRPS_WORKER_HALF_H_
