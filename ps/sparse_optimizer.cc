#include "ps/sparse_optimizer.h"

#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/hash.h"

namespace ctrps {
namespace {

class Sgd final : public SparseOptimizer {
 public:
  Sgd(const SparseOptimizerConfig& c, int dim) : SparseOptimizer(c, dim, 0) {}
  void Update(float* w, float*, const float* g, uint32_t, float lr, float fraction) const override {
    const float l2 = config_.l2() * fraction;
    for (int i = 0; i < dim_; ++i) w[i] -= lr * (g[i] + l2 * w[i]);
  }
};

class Adagrad final : public SparseOptimizer {
 public:
  Adagrad(const SparseOptimizerConfig& c, int dim) : SparseOptimizer(c, dim, dim) {}
  void InitState(float* state) const override {
    for (int i = 0; i < dim_; ++i) state[i] = config_.initial_accumulator();
  }
  void Update(float* w, float* acc, const float* g, uint32_t, float lr,
              float fraction) const override {
    const float l2 = config_.l2() * fraction, eps = config_.epsilon();
    for (int i = 0; i < dim_; ++i) {
      float gi = g[i] + l2 * w[i];
      acc[i] += gi * gi;
      w[i] -= lr * gi / (std::sqrt(acc[i]) + eps);
    }
  }
};

class Adam final : public SparseOptimizer {
 public:
  Adam(const SparseOptimizerConfig& c, int dim) : SparseOptimizer(c, dim, 2 * dim) {}
  void Update(float* w, float* state, const float* g, uint32_t step, float lr,
              float fraction) const override {
    const float l2 = config_.l2() * fraction, eps = config_.epsilon();
    const float b1 = config_.beta1(), b2 = config_.beta2();
    const float c1 = 1.0f - std::pow(b1, static_cast<float>(step));
    const float c2 = 1.0f - std::pow(b2, static_cast<float>(step));
    const float step_size = lr / c1;
    const float inv_sqrt_c2 = 1.0f / std::sqrt(c2);
    float* m = state;
    float* v = state + dim_;
    for (int i = 0; i < dim_; ++i) {
      float gi = g[i] + l2 * w[i];
      m[i] = b1 * m[i] + (1 - b1) * gi;
      v[i] = b2 * v[i] + (1 - b2) * gi * gi;
      w[i] -= step_size * m[i] / (std::sqrt(v[i]) * inv_sqrt_c2 + eps);
    }
  }
};

// FTRL-Proximal (McMahan et al. 2013), per coordinate; state = (z, n).
class Ftrl final : public SparseOptimizer {
 public:
  Ftrl(const SparseOptimizerConfig& c, int dim) : SparseOptimizer(c, dim, 2 * dim) {}
  void Update(float* w, float* state, const float* g, uint32_t, float alpha, float) const override {
    const float beta = config_.ftrl_beta();
    const float l1 = config_.l1(), l2 = config_.l2();
    float* z = state;
    float* n = state + dim_;
    for (int i = 0; i < dim_; ++i) {
      float n_new = n[i] + g[i] * g[i];
      float sigma = (std::sqrt(n_new) - std::sqrt(n[i])) / alpha;
      z[i] += g[i] - sigma * w[i];
      n[i] = n_new;
      float az = std::fabs(z[i]);
      w[i] = az <= l1
                 ? 0.0f
                 : -(z[i] - std::copysign(l1, z[i])) / ((beta + std::sqrt(n_new)) / alpha + l2);
    }
  }
};

// Uniform in [0, 1) from 24 high bits.
inline float Unit(uint64_t bits) { return static_cast<float>(bits >> 40) * (1.0f / 16777216.0f); }

}  // namespace

void SparseOptimizer::InitState(float* state) const {
  if (state_dim_ > 0) std::memset(state, 0, sizeof(float) * state_dim_);
}

absl::StatusOr<std::unique_ptr<SparseOptimizer>> SparseOptimizer::Create(
    const SparseOptimizerConfig& config, int dim) {
  if (config.learning_rate() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("negative learning rate ", config.learning_rate()));
  }
  switch (config.kind()) {
    case SparseOptimizerConfig::SGD:
      return std::unique_ptr<SparseOptimizer>(new Sgd(config, dim));
    case SparseOptimizerConfig::ADAGRAD:
      return std::unique_ptr<SparseOptimizer>(new Adagrad(config, dim));
    case SparseOptimizerConfig::ADAM:
      return std::unique_ptr<SparseOptimizer>(new Adam(config, dim));
    case SparseOptimizerConfig::FTRL:
      if (config.learning_rate() == 0)
        return absl::InvalidArgumentError("FTRL needs learning_rate (alpha) > 0");
      return std::unique_ptr<SparseOptimizer>(new Ftrl(config, dim));
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown sparse optimizer kind ", config.kind()));
}

void InitializeRow(const TableConfig& config, uint64_t key, float* w, int dim) {
  const InitializerConfig& init = config.init();
  const float scale = init.scale();
  const uint64_t base = Mix64(key ^ Mix64(config.seed()));
  switch (init.kind()) {
    case InitializerConfig::ZEROS:
      std::memset(w, 0, sizeof(float) * dim);
      return;
    case InitializerConfig::UNIFORM:
      for (int i = 0; i < dim; ++i) w[i] = (2.0f * Unit(Mix64(base + i)) - 1.0f) * scale;
      return;
    case InitializerConfig::NORMAL:
      // Box-Muller on counter-based uniforms; redraw past 2 sigma.
      for (int i = 0; i < dim; ++i) {
        uint64_t ctr = base + 0x10000ULL * i;
        float z;
        do {
          float u1 = Unit(Mix64(ctr++)) + (1.0f / 33554432.0f);
          float u2 = Unit(Mix64(ctr++));
          z = std::sqrt(-2.0f * std::log(u1)) * std::cos(6.2831853f * u2);
        } while (std::fabs(z) > 2.0f);
        w[i] = z * scale;
      }
      return;
  }
}

}  // namespace ctrps
