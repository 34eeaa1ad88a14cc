// Deterministic pseudo-random numbers for initialisation and dropout.
//
// The sequence depends only on the seed (no std:: distributions, whose output
// differs between standard libraries), so every worker that builds a model
// from the same seed gets bit-identical parameters.
#ifndef CTRPS_WORKER_NN_RANDOM_H_
#define CTRPS_WORKER_NN_RANDOM_H_

#include <cstdint>

#include "common/hash.h"

namespace ctrps::nn {

// SplitMix64 stream. Not thread-safe; one per user.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(Mix64(seed)) {}

  uint64_t Next() {
    state_ += 0x9e3779b97f4a7c15ULL;
    uint64_t z = state_;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  // Uniform in [0, 1) with 24 bits of precision.
  float Uniform() { return static_cast<float>(Next() >> 40) * 0x1.0p-24f; }

  // Uniform in [lo, hi).
  float Uniform(float lo, float hi) { return lo + (hi - lo) * Uniform(); }

 private:
  uint64_t state_;
};

}  // namespace ctrps::nn

#endif  // CTRPS_WORKER_NN_RANDOM_H_
