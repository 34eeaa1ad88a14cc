// Dense optimizers over a ParameterArena's values and (allreduced)
// gradients, with PyTorch's update rules and an L2 term ("net_regularizer",
// as FuxiCTR adds it: the gradient of (l2 / 2) * ||w||^2, g += l2 * w):
//   SGD      w -= lr * g
//   Adagrad  s += g^2;  w -= lr * g / (sqrt(s) + eps)        (s starts at 0)
//   Adam     m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
//            w -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
// The padding between arena slots has zero values and gradients, which every
// rule leaves at zero, so the whole arena is updated in one pass.
//
// Not thread-safe.
#ifndef CTRPS_WORKER_NN_DENSE_OPTIMIZER_H_
#define CTRPS_WORKER_NN_DENSE_OPTIMIZER_H_

#include <cstdint>
#include <memory>
#include <span>

#include "absl/status/statusor.h"
#include "common/proto/config.pb.h"
#include "worker/nn/tensor.h"

namespace ctrps::nn {

class DenseOptimizer {
 public:
  // For `size` floats (the arena's values().size()). InvalidArgument when
  // learning_rate <= 0, l2 < 0, a beta outside [0, 1) or epsilon < 0.
  static absl::StatusOr<std::unique_ptr<DenseOptimizer>> Create(const DenseOptimizerConfig& config,
                                                                int64_t size);

  // One update of `values` from `grads` (both of the size given to Create).
  void Step(std::span<float> values, std::span<const float> grads);

  // The optimizer's state as one blob for checkpoints: Adam m then v, Adagrad
  // the squared-gradient sums, SGD nothing. Restore by writing into it and
  // calling set_step().
  std::span<float> state() { return {state_.data(), state_.size()}; }
  int64_t step() const { return step_; }
  void set_step(int64_t step) { step_ = step; }

  // For reduce-on-plateau schedules.
  float learning_rate() const { return lr_; }
  void set_learning_rate(float lr) { lr_ = lr; }

 private:
  DenseOptimizer(const DenseOptimizerConfig& config, int64_t size);

  DenseOptimizerConfig::Kind kind_;
  int64_t size_;
  float lr_;
  float l2_;
  float beta1_;
  float beta2_;
  float eps_;
  int64_t step_ = 0;
  AlignedVector state_;
};

}  // namespace ctrps::nn

#endif  // CTRPS_WORKER_NN_DENSE_OPTIMIZER_H_
