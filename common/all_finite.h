// Whether a float array holds a NaN or an infinity, fast enough for every
// push on the server.
#ifndef CTRPS_COMMON_ALL_FINITE_H_
#define CTRPS_COMMON_ALL_FINITE_H_

#include <cstdint>
#include <cstring>

namespace ctrps {

// True if no v[0..n) is NaN or infinite (an exponent of all ones). The test
// is on the bits: an integer OR the compiler vectorises, where a float sum
// would be a dependent chain (no -ffast-math here).
inline bool AllFinite(const float* v, uint64_t n) {
  uint32_t bad = 0;
  for (uint64_t i = 0; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, v + i, sizeof(bits));
    bad |= static_cast<uint32_t>((bits & 0x7f800000u) == 0x7f800000u);
  }
  return bad == 0;
}

}  // namespace ctrps

#endif  // CTRPS_COMMON_ALL_FINITE_H_
