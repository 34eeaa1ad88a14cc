// Training losses over a model's logits: its main logit and, for the models
// that train sub-networks on their own (FCN's Tri-BCE), auxiliary logits.
// Evaluation and serving read the main logit only.
#ifndef CTRPS_WORKER_NN_LOSS_RULE_H_
#define CTRPS_WORKER_NN_LOSS_RULE_H_

#include <cstddef>
#include <span>

namespace ctrps::nn {

enum class LossRule {
  // L = BCE(logit): the mean binary cross-entropy. No auxiliary logits.
  kBce,
  // FCN's Tri-BCE, with two auxiliary logits (the sub-networks' own):
  //   L = l + sum_k w_k l_k,  l = BCE(logit), l_k = BCE(aux_k),
  //   w_k = max(0, l_k - l),
  // differentiated through the weights too, as the authors' PyTorch code
  // does: dL/dl = 1 - sum_{k: w_k > 0} l_k, dL/dl_k = [w_k > 0] (2 l_k - l).
  kTriBce,
};

// Number of auxiliary logits `rule` takes, at most kMaxAuxiliaryLogits.
int NumAuxiliaryLogits(LossRule rule);
inline constexpr size_t kMaxAuxiliaryLogits = 2;

// The loss of one batch under `rule` and its gradients: logits, labels,
// d_logits of length B > 0; aux and d_aux hold NumAuxiliaryLogits(rule)
// spans of length B each. Overwrites d_logits and d_aux with d(L)/d(logit)
// and d(L)/d(aux_k). Labels are in [0, 1].
double ComputeLoss(LossRule rule, std::span<const float> logits,
                   std::span<const std::span<const float>> aux, std::span<const float> labels,
                   std::span<float> d_logits, std::span<const std::span<float>> d_aux);

}  // namespace ctrps::nn

#endif  // CTRPS_WORKER_NN_LOSS_RULE_H_
