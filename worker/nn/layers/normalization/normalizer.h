// Normalizer: the per-column standardisation shared by BatchNorm and Dice
// (torch.nn.BatchNorm1d without the affine part).
//
// Training: xhat = (x - mean) / sqrt(var + eps) with the batch's mean and
// biased variance; the running statistics move towards the batch's mean and
// unbiased variance with `momentum` (PyTorch's convention:
// running = (1 - momentum) * running + momentum * batch). Evaluation: the
// running statistics are used. Running mean (init 0) and variance (init 1)
// are buffers in the arena.
#ifndef CTRPS_WORKER_NN_LAYERS_NORMALIZATION_NORMALIZER_H_
#define CTRPS_WORKER_NN_LAYERS_NORMALIZATION_NORMALIZER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "worker/nn/parameter_arena.h"
#include "worker/nn/tensor.h"

namespace ctrps::nn {

class Normalizer {
 public:
  Normalizer(ParameterArena* arena, const std::string& name, int64_t width, float eps,
             float momentum);

  // xhat [rows, width] from x [rows, width].
  void Forward(const float* x, int64_t rows, bool training, float* xhat);

  // dx from dxhat = d(loss)/d(xhat), for the last Forward(); writes dx, or
  // adds to it when `accumulate`.
  void Backward(const float* dxhat, const float* xhat, int64_t rows, bool accumulate, float* dx);

  ParamSlot running_mean() const { return running_mean_; }
  ParamSlot running_var() const { return running_var_; }

 private:
  ParameterArena* arena_;
  int64_t width_;
  float eps_;
  float momentum_;
  ParamSlot running_mean_;
  ParamSlot running_var_;
  bool last_training_ = false;
  AlignedVector mean_;     // of the last Forward
  AlignedVector inv_std_;  // of the last Forward
  AlignedVector mean_g_;   // Backward scratch: column means of dxhat
  AlignedVector mean_gh_;  // and of dxhat * xhat
  std::vector<double> sum_;
  std::vector<double> sum2_;
};

}  // namespace ctrps::nn

#endif  // CTRPS_WORKER_NN_LAYERS_NORMALIZATION_NORMALIZER_H_
