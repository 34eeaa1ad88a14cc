// ParameterArena: every dense parameter of a model in one contiguous buffer.
//
// Trainable parameters live in values(), with a gradient buffer grads() of
// the same length and layout, so the trainer averages all gradients with one
// MPI_Allreduce and saves or restores all values as one blob. Non-trainable
// state (BatchNorm running mean and variance) lives in buffers(), a second
// contiguous arena the trainer averages across workers too.
//
// Layers register their parameters while the model is built and keep the
// returned ParamSlot; they turn it into a pointer on each use, because
// registering a parameter may move the buffers. Each slot starts at a
// multiple of 16 floats (64 bytes); the padding between slots is zero in
// values and grads, and optimizers leave zeros at zero.
//
// Initialisation is deterministic: parameter i is filled from a random stream
// seeded by (seed, i), so two arenas built with the same seed and the same
// sequence of registrations are bit-identical.
//
// Not thread-safe.
#ifndef CTRPS_WORKER_NN_PARAMETER_ARENA_H_
#define CTRPS_WORKER_NN_PARAMETER_ARENA_H_

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "worker/nn/tensor.h"

namespace ctrps::nn {

// Where one parameter (or buffer) sits in its arena.
struct ParamSlot {
  int64_t offset = 0;
  int64_t size = 0;
};

// How a parameter is initialised.
struct Initializer {
  enum class Kind { kConstant, kUniform, kXavierUniform };
  Kind kind = Kind::kConstant;
  float value = 0.0f;  // kConstant
  float bound = 0.0f;  // kUniform: U(value - bound, value + bound)
  int64_t fan_in = 0;  // kXavierUniform: U(-a, a), a = sqrt(6 / (fan_in + fan_out))
  int64_t fan_out = 0;

  static Initializer Zeros() { return Constant(0.0f); }
  static Initializer Constant(float v) { return {Kind::kConstant, v, 0, 0, 0}; }
  static Initializer Uniform(float bound) { return {Kind::kUniform, 0, bound, 0, 0}; }
  // U(lo, hi), lo < hi.
  static Initializer UniformRange(float lo, float hi) {
    return {Kind::kUniform, 0.5f * (lo + hi), 0.5f * (hi - lo), 0, 0};
  }
  // Glorot/Xavier uniform with gain 1, as torch.nn.init.xavier_uniform_.
  static Initializer XavierUniform(int64_t fan_in, int64_t fan_out) {
    return {Kind::kXavierUniform, 0, 0, fan_in, fan_out};
  }
};

// Name and place of one registered parameter or buffer.
struct ParamInfo {
  std::string name;
  ParamSlot slot;
};

class ParameterArena {
 public:
  explicit ParameterArena(uint64_t seed) : seed_(seed) {}
  ParameterArena(const ParameterArena&) = delete;
  ParameterArena& operator=(const ParameterArena&) = delete;

  // Registers a trainable parameter of `size` floats (> 0) filled by `init`;
  // its gradient starts at zero. Invalidates earlier pointers.
  ParamSlot AddParameter(std::string name, int64_t size, const Initializer& init);

  // Registers a non-trainable buffer of `size` floats set to `fill`.
  // Invalidates earlier pointers into buffers().
  ParamSlot AddBuffer(std::string name, int64_t size, float fill);

  float* value(ParamSlot s) { return values_.data() + s.offset; }
  const float* value(ParamSlot s) const { return values_.data() + s.offset; }
  float* grad(ParamSlot s) { return grads_.data() + s.offset; }
  float* buffer(ParamSlot s) { return buffers_.data() + s.offset; }
  const float* buffer(ParamSlot s) const { return buffers_.data() + s.offset; }

  // The whole arenas (padding included).
  std::span<float> values() { return {values_.data(), values_.size()}; }
  std::span<const float> values() const { return {values_.data(), values_.size()}; }
  std::span<float> grads() { return {grads_.data(), grads_.size()}; }
  std::span<const float> grads() const { return {grads_.data(), grads_.size()}; }
  std::span<float> buffers() { return {buffers_.data(), buffers_.size()}; }
  std::span<const float> buffers() const { return {buffers_.data(), buffers_.size()}; }

  void ZeroGrads();

  // Registered parameters and buffers, in registration order.
  const std::vector<ParamInfo>& parameters() const { return parameters_; }
  const std::vector<ParamInfo>& buffer_infos() const { return buffers_info_; }

  // Floats of real parameters (padding excluded).
  int64_t num_parameters() const { return num_parameters_; }

 private:
  uint64_t seed_;
  AlignedVector values_;
  AlignedVector grads_;
  AlignedVector buffers_;
  std::vector<ParamInfo> parameters_;
  std::vector<ParamInfo> buffers_info_;
  int64_t num_parameters_ = 0;
};

}  // namespace ctrps::nn

#endif  // CTRPS_WORKER_NN_PARAMETER_ARENA_H_
