#include "worker/nn/parameter_arena.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <utility>

#include "common/hash.h"
#include "worker/nn/random.h"

namespace ctrps::nn {
namespace {

constexpr int64_t kSlotAlignFloats = static_cast<int64_t>(kAlignBytes / sizeof(float));

int64_t RoundUp(int64_t n) {
  return (n + kSlotAlignFloats - 1) / kSlotAlignFloats * kSlotAlignFloats;
}

void Fill(const Initializer& init, uint64_t seed, float* out, int64_t n) {
  switch (init.kind) {
    case Initializer::Kind::kConstant:
      std::fill(out, out + n, init.value);
      return;
    case Initializer::Kind::kUniform:
    case Initializer::Kind::kXavierUniform: {
      float bound = init.bound;
      if (init.kind == Initializer::Kind::kXavierUniform) {
        bound = std::sqrt(6.0f / static_cast<float>(init.fan_in + init.fan_out));
      }
      Rng rng(seed);
      for (int64_t i = 0; i < n; ++i) out[i] = init.value + rng.Uniform(-bound, bound);
      return;
    }
  }
}

}  // namespace

ParamSlot ParameterArena::AddParameter(std::string name, int64_t size, const Initializer& init) {
  assert(size > 0);
  ParamSlot slot{static_cast<int64_t>(values_.size()), size};
  const int64_t end = slot.offset + RoundUp(size);
  values_.resize(end, 0.0f);
  grads_.resize(end, 0.0f);
  const uint64_t stream = Mix64(seed_ ^ Mix64(static_cast<uint64_t>(parameters_.size()) + 1));
  Fill(init, stream, values_.data() + slot.offset, size);
  parameters_.push_back({std::move(name), slot});
  num_parameters_ += size;
  return slot;
}

ParamSlot ParameterArena::AddBuffer(std::string name, int64_t size, float fill) {
  assert(size > 0);
  ParamSlot slot{static_cast<int64_t>(buffers_.size()), size};
  buffers_.resize(slot.offset + RoundUp(size), 0.0f);
  std::fill(buffers_.data() + slot.offset, buffers_.data() + slot.offset + size, fill);
  buffers_info_.push_back({std::move(name), slot});
  return slot;
}

void ParameterArena::ZeroGrads() { std::fill(grads_.begin(), grads_.end(), 0.0f); }

}  // namespace ctrps::nn
