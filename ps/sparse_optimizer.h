// Server-side optimizers for embedding rows. One instance per table; Update
// is const and thread-safe (all state lives in the row).
#ifndef CTRPS_PS_SPARSE_OPTIMIZER_H_
#define CTRPS_PS_SPARSE_OPTIMIZER_H_

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "common/proto/config.pb.h"

namespace ctrps {

class SparseOptimizer {
 public:
  virtual ~SparseOptimizer() = default;

  // SGD, Adagrad, Adam or FTRL for rows of `dim` weights. InvalidArgument for
  // a negative learning rate or an unknown kind.
  static absl::StatusOr<std::unique_ptr<SparseOptimizer>> Create(
      const SparseOptimizerConfig& config, int dim);

  // Floats of optimizer state per row (0 for SGD, dim for Adagrad, 2*dim for
  // Adam and FTRL).
  int state_dim() const { return state_dim_; }
  int dim() const { return dim_; }

  // Sets the state of a new row.
  virtual void InitState(float* state) const;

  // Applies gradient `g` to weights `w` with state `state`. `step` is the
  // row's update count including this one (1 for the first update), used by
  // Adam's bias correction. `lr` is the learning rate to use (the config's,
  // possibly scaled down on a plateau).
  // `fraction` (0, 1] is the share of a global step this update carries
  // (see RequestHeader.batch_fraction): it scales the L2 term, so W workers
  // regularise a row once per step between them. Steps themselves are not
  // scaled: a key that only one worker saw must move as far as it would
  // with one worker.
  virtual void Update(float* w, float* state, const float* g, uint32_t step, float lr,
                      float fraction = 1.0f) const = 0;

  float learning_rate() const { return config_.learning_rate(); }

 protected:
  SparseOptimizer(const SparseOptimizerConfig& config, int dim, int state_dim)
      : config_(config), dim_(dim), state_dim_(state_dim) {}
  SparseOptimizerConfig config_;
  int dim_;
  int state_dim_;
};

// Initial weights of the row for `key`: a pure function of (config, key), so
// every server and every time gives the same row.
void InitializeRow(const TableConfig& config, uint64_t key, float* w, int dim);

}  // namespace ctrps

#endif  // CTRPS_PS_SPARSE_OPTIMIZER_H_
