// Sigmoid + binary cross-entropy, fused and numerically stable.
#ifndef CTRPS_WORKER_NN_BCE_LOSS_H_
#define CTRPS_WORKER_NN_BCE_LOSS_H_

#include <span>

namespace ctrps::nn {

// Mean over the batch B of -[y log p + (1 - y) log(1 - p)], p = sigmoid(z),
// computed as max(z, 0) - z y + log1p(exp(-|z|)) (no overflow, no log(0)).
// Writes d_logits[i] = (p_i - y_i) / B, the gradient of the mean loss.
// All spans have length B > 0; labels are in [0, 1].
double SigmoidCrossEntropyWithLogits(std::span<const float> logits, std::span<const float> labels,
                                     std::span<float> d_logits);

// probs[i] = sigmoid(logits[i]), stable for large |z|.
void SigmoidProbabilities(std::span<const float> logits, std::span<float> probs);

}  // namespace ctrps::nn

#endif  // CTRPS_WORKER_NN_BCE_LOSS_H_
