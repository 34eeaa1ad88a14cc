#include "worker/nn/layers/basic/learned_vector.h"

#include <cstring>

namespace ctrps::nn {

LearnedVector::LearnedVector(Graph* graph, int64_t size, const Initializer& init,
                             const std::string& name)
    : arena_(graph->arena()),
      out_(graph->NewNode(size, /*per_sample=*/false)),
      value_(arena_->AddParameter(name, size, init)) {}

void LearnedVector::Forward(const ForwardContext&) {
  std::memcpy(out_->mutable_value(), arena_->value(value_), sizeof(float) * out_->width());
}

void LearnedVector::Backward() {
  float* g = arena_->grad(value_);
  const float* dy = out_->grad();
  for (int64_t i = 0; i < out_->width(); ++i) g[i] += dy[i];
}

}  // namespace ctrps::nn
