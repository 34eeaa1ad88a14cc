#include "worker/nn/layers/basic/dropout.h"

#include <cassert>
#include <cstring>

#include "common/hash.h"
#include "worker/nn/random.h"

namespace ctrps::nn {

Dropout::Dropout(Graph* graph, Node* in, float rate)
    : in_(in),
      out_(graph->NewNode(in->width(), in->per_sample())),
      rate_(rate),
      seed_(graph->NextLayerSeed()) {
  assert(rate >= 0.0f && rate < 1.0f);
}

void Dropout::Forward(const ForwardContext& ctx) {
  const int64_t n = in_->size();
  last_training_ = ctx.training && rate_ > 0.0f;
  if (!last_training_) {
    std::memcpy(out_->mutable_value(), in_->value(), sizeof(float) * n);
    return;
  }
  mask_.resize(n);
  Rng rng(Mix64(seed_ ^ Mix64(ctx.step)));
  const float scale = 1.0f / (1.0f - rate_);
  // Compare 24-bit integers: keep when u >= rate.
  const uint32_t threshold = static_cast<uint32_t>(static_cast<double>(rate_) * (1u << 24));
  float* mask = mask_.data();
  int64_t i = 0;
  for (; i + 1 < n; i += 2) {
    const uint64_t bits = rng.Next();
    mask[i] = static_cast<uint32_t>(bits & 0xffffff) >= threshold ? scale : 0.0f;
    mask[i + 1] = static_cast<uint32_t>((bits >> 32) & 0xffffff) >= threshold ? scale : 0.0f;
  }
  if (i < n) mask[i] = static_cast<uint32_t>(rng.Next() & 0xffffff) >= threshold ? scale : 0.0f;
  const float* x = in_->value();
  float* y = out_->mutable_value();
  for (int64_t j = 0; j < n; ++j) y[j] = x[j] * mask[j];
}

void Dropout::Backward() {
  if (!in_->needs_grad()) return;
  const float* dy = out_->grad();
  if (!last_training_) {
    StoreGrad(in_->BeginGradWrite(), in_->grad(), in_->size(), [&](int64_t i) { return dy[i]; });
    return;
  }
  const float* mask = mask_.data();
  StoreGrad(in_->BeginGradWrite(), in_->grad(), in_->size(),
            [&](int64_t i) { return dy[i] * mask[i]; });
}

}  // namespace ctrps::nn
