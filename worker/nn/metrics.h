// Evaluation metrics: exact ROC AUC and logloss.
//
// Labels are 0/1 (a label >= 0.5 counts as positive). Across workers, gather
// every worker's scores and labels on the chief (e.g. MPI_Gatherv of both
// arrays), Merge() them into one EvalSet, and compute there: AUC does not
// decompose into per-worker parts, and gathering keeps it exact.
#ifndef CTRPS_WORKER_NN_METRICS_H_
#define CTRPS_WORKER_NN_METRICS_H_

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/statusor.h"

namespace ctrps::nn {

// Area under the ROC curve = P(score of a random positive > score of a
// random negative), ties counting 1/2 (the Mann-Whitney statistic with
// averaged ranks, as sklearn's roc_auc_score). O(n log n), exact.
// InvalidArgument when the sizes differ, a score is NaN, or the labels do
// not contain both classes.
absl::StatusOr<double> ComputeAuc(std::span<const float> scores, std::span<const float> labels);

// Mean binary cross-entropy of probabilities, each clipped to
// [1e-7, 1 - 1e-7] (sklearn's log_loss with eps 1e-7, as FuxiCTR reports it).
// InvalidArgument when the sizes differ or the input is empty.
absl::StatusOr<double> ComputeLogLoss(std::span<const float> probs, std::span<const float> labels);

// Predicted probabilities and labels collected over an evaluation pass.
class EvalSet {
 public:
  // Appends; the spans must have the same length.
  void Add(std::span<const float> probs, std::span<const float> labels);
  void Merge(const EvalSet& other);
  void Clear();

  int64_t size() const { return static_cast<int64_t>(probs_.size()); }
  const std::vector<float>& probs() const { return probs_; }
  const std::vector<float>& labels() const { return labels_; }

  absl::StatusOr<double> Auc() const { return ComputeAuc(probs_, labels_); }
  absl::StatusOr<double> LogLoss() const { return ComputeLogLoss(probs_, labels_); }

 private:
  std::vector<float> probs_;
  std::vector<float> labels_;
};

}  // namespace ctrps::nn

#endif  // CTRPS_WORKER_NN_METRICS_H_
