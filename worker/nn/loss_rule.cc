#include "worker/nn/loss_rule.h"

#include <cassert>

#include "worker/nn/bce_loss.h"

namespace ctrps::nn {

int NumAuxiliaryLogits(LossRule rule) { return rule == LossRule::kTriBce ? 2 : 0; }

double ComputeLoss(LossRule rule, std::span<const float> logits,
                   std::span<const std::span<const float>> aux, std::span<const float> labels,
                   std::span<float> d_logits, std::span<const std::span<float>> d_aux) {
  assert(aux.size() == static_cast<size_t>(NumAuxiliaryLogits(rule)) && d_aux.size() == aux.size());
  const double loss = SigmoidCrossEntropyWithLogits(logits, labels, d_logits);
  if (rule == LossRule::kBce) return loss;
  double total = loss, d_main = 1.0;
  for (size_t k = 0; k < aux.size(); ++k) {
    const double loss_k = SigmoidCrossEntropyWithLogits(aux[k], labels, d_aux[k]);
    const double weight = loss_k - loss;
    double d_k = 0.0;
    if (weight > 0.0) {
      total += loss_k * weight;
      d_main -= loss_k;
      d_k = 2.0 * loss_k - loss;
    }
    const float scale = static_cast<float>(d_k);
    for (float& g : d_aux[k]) g *= scale;
  }
  const float scale = static_cast<float>(d_main);
  for (float& g : d_logits) g *= scale;
  return total;
}

}  // namespace ctrps::nn
