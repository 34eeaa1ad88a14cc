#include "worker/nn/layers/attention/multi_head_self_attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "gtest/gtest.h"
#include "worker/nn/gradient_check.h"

namespace ctrps::nn {
namespace {

// The formula of the header, in double, for one sample, without dropout.
std::vector<double> Reference(const std::vector<float>& x, int f, int d_in,
                              const SelfAttentionOptions& o, const std::vector<float>& wq,
                              const std::vector<float>& wk, const std::vector<float>& wv,
                              const std::vector<float>& wres) {
  const int a = o.attention_dim, dh = a / o.num_heads;
  auto project = [&](const std::vector<float>& w) {
    std::vector<double> y(f * a, 0.0);
    for (int i = 0; i < f; ++i)
      for (int c = 0; c < a; ++c)
        for (int k = 0; k < d_in; ++k) y[i * a + c] += double{x[i * d_in + k]} * w[c * d_in + k];
    return y;
  };
  const std::vector<double> q = project(wq), k = project(wk), v = project(wv);
  std::vector<double> z(f * a, 0.0);
  if (o.use_residual) {
    if (wres.empty()) {
      for (int i = 0; i < f * a; ++i) z[i] = x[i];
    } else {
      z = project(wres);
    }
  }
  const double s = o.use_scale ? 1.0 / std::sqrt(double{dh}) : 1.0;
  for (int h = 0; h < o.num_heads; ++h) {
    for (int i = 0; i < f; ++i) {
      std::vector<double> p(f);
      double m = -1e300, sum = 0;
      for (int j = 0; j < f; ++j) {
        double dot = 0;
        for (int c = 0; c < dh; ++c) dot += q[i * a + h * dh + c] * k[j * a + h * dh + c];
        p[j] = dot * s;
        m = std::max(m, p[j]);
      }
      for (int j = 0; j < f; ++j) sum += p[j] = std::exp(p[j] - m);
      for (int j = 0; j < f; ++j)
        for (int c = 0; c < dh; ++c) z[i * a + h * dh + c] += p[j] / sum * v[j * a + h * dh + c];
    }
  }
  if (o.layer_norm) {
    for (int i = 0; i < f; ++i) {
      double mean = 0, var = 0;
      for (int c = 0; c < a; ++c) mean += z[i * a + c] / a;
      for (int c = 0; c < a; ++c) var += (z[i * a + c] - mean) * (z[i * a + c] - mean) / a;
      for (int c = 0; c < a; ++c) z[i * a + c] = (z[i * a + c] - mean) / std::sqrt(var + 1e-5);
    }
  }
  for (double& e : z) e = std::max(e, 0.0);
  return z;
}

TEST(MultiHeadSelfAttentionTest, ForwardMatchesTheFormula) {
  constexpr int kRows = 3, kFields = 4;
  struct Case {
    int d_in;
    SelfAttentionOptions o;
  };
  const Case cases[] = {
      {3, {.num_fields = kFields, .attention_dim = 6, .num_heads = 2, .use_scale = true}},
      {6, {.num_fields = kFields, .attention_dim = 6, .num_heads = 3, .layer_norm = true}},
      {5, {.num_fields = kFields, .attention_dim = 4, .num_heads = 1, .use_residual = false}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.d_in);
    ParameterArena arena(1);
    Graph graph(&arena, 1);
    Node* x = graph.AddInput(kFields * c.d_in, false);
    auto* att = graph.Add<MultiHeadSelfAttention>(x, c.o);
    RandomizeParameters(&arena, 2);
    auto param = [&](const char* suffix) {
      for (const ParamInfo& p : arena.parameters()) {
        if (p.name == std::string("self_attention.") + suffix) {
          const float* v = arena.value(p.slot);
          return std::vector<float>(v, v + p.slot.size);
        }
      }
      return std::vector<float>();
    };
    std::vector<float> xv = RandomValues(kRows * kFields * c.d_in, 3);
    graph.BindInput(x, xv.data(), nullptr);
    graph.Forward(kRows, {});
    // Layer norm starts as gamma 1, beta 0 only before randomising; reset them.
    if (c.o.layer_norm) {
      for (const ParamInfo& p : arena.parameters()) {
        if (p.name == "self_attention.layer_norm.weight") std::fill_n(arena.value(p.slot), 6, 1.f);
        if (p.name == "self_attention.layer_norm.bias") std::fill_n(arena.value(p.slot), 6, 0.f);
      }
      graph.Forward(kRows, {});
    }
    const int a = c.o.attention_dim;
    ASSERT_EQ(att->out()->width(), kFields * a);
    for (int r = 0; r < kRows; ++r) {
      std::vector<float> xr(xv.begin() + r * kFields * c.d_in,
                            xv.begin() + (r + 1) * kFields * c.d_in);
      const std::vector<double> ref = Reference(xr, kFields, c.d_in, c.o, param("w_q"),
                                                param("w_k"), param("w_v"), param("w_res"));
      for (int i = 0; i < kFields * a; ++i) {
        EXPECT_NEAR(att->out()->value()[r * kFields * a + i], ref[i], 1e-4) << r << " " << i;
      }
    }
  }
}

TEST(MultiHeadSelfAttentionTest, BackwardMatchesFiniteDifferences) {
  struct Case {
    int d_in;
    SelfAttentionOptions o;
    bool training;
  };
  const Case cases[] = {
      {3, {.num_fields = 4, .attention_dim = 6, .num_heads = 2, .use_scale = true}, false},
      {6,
       {.num_fields = 3, .attention_dim = 6, .num_heads = 3, .layer_norm = true, .dropout = 0.3f},
       true},
      {4,
       {.num_fields = 5,
        .attention_dim = 4,
        .num_heads = 1,
        .use_residual = false,
        .layer_norm = true},
       true},
      {2, {.num_fields = 1, .attention_dim = 4, .num_heads = 2, .dropout = 0.5f}, true},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.d_in);
    ParameterArena arena(1);
    Graph graph(&arena, 1);
    Node* x = graph.AddInput(c.o.num_fields * c.d_in, true);
    auto* att = graph.Add<MultiHeadSelfAttention>(x, c.o);
    RandomizeParameters(&arena, 5);
    Node* in[] = {x};
    Node* out[] = {att->out()};
    GradCheckOptions options;
    options.training = c.training;
    options.step = 7;
    ExpectGradientsMatch(&graph, &arena, in, {RandomValues(3 * c.o.num_fields * c.d_in, 9)}, out, 3,
                         options);
  }
}

TEST(MultiHeadSelfAttentionTest, DropoutIsOffInEvaluationAndRepeatsWithTheStep) {
  ParameterArena arena(1);
  Graph graph(&arena, 1);
  Node* x = graph.AddInput(4 * 4, false);
  auto* att = graph.Add<MultiHeadSelfAttention>(
      x, SelfAttentionOptions{.num_fields = 4, .attention_dim = 4, .dropout = 0.5f});
  std::vector<float> xv = RandomValues(2 * 16, 1);
  graph.BindInput(x, xv.data(), nullptr);
  auto run = [&](bool training, uint64_t step) {
    graph.Forward(2, {training, step});
    return std::vector<float>(att->out()->value(), att->out()->value() + 32);
  };
  const std::vector<float> eval = run(false, 0);
  EXPECT_EQ(run(false, 3), eval);
  const std::vector<float> a = run(true, 3);
  EXPECT_NE(a, eval);
  EXPECT_EQ(run(true, 3), a);
  EXPECT_NE(run(true, 4), a);
}

}  // namespace
}  // namespace ctrps::nn
