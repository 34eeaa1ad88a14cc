#include "worker/nn/bce_loss.h"

#include <algorithm>
#include <cassert>
#include <cmath>

namespace ctrps::nn {
namespace {

float Sigmoid(float z) {
  if (z >= 0) return 1.0f / (1.0f + std::exp(-z));
  const float e = std::exp(z);
  return e / (1.0f + e);
}

}  // namespace

double SigmoidCrossEntropyWithLogits(std::span<const float> logits, std::span<const float> labels,
                                     std::span<float> d_logits) {
  assert(logits.size() == labels.size() && logits.size() == d_logits.size());
  assert(!logits.empty());
  const size_t n = logits.size();
  const float inv_n = 1.0f / static_cast<float>(n);
  double loss = 0.0;
  for (size_t i = 0; i < n; ++i) {
    const double z = logits[i], y = labels[i];
    loss += std::max(z, 0.0) - z * y + std::log1p(std::exp(-std::fabs(z)));
    d_logits[i] = (Sigmoid(logits[i]) - labels[i]) * inv_n;
  }
  return loss / static_cast<double>(n);
}

void SigmoidProbabilities(std::span<const float> logits, std::span<float> probs) {
  assert(logits.size() == probs.size());
  for (size_t i = 0; i < logits.size(); ++i) probs[i] = Sigmoid(logits[i]);
}

}  // namespace ctrps::nn
