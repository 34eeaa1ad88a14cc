#include "worker/nn/layers/sequence/sdim_sampling.h"

#include <cmath>
#include <cstdint>
#include <vector>

#include "gtest/gtest.h"
#include "worker/nn/gradient_check.h"
#include "worker/nn/random.h"

namespace ctrps::nn {
namespace {

constexpr int kBatch = 4, kLen = 8, kDim = 4, kFields = 3, kTarget = 2;

struct Fixture {
  ParameterArena arena{1};
  Graph graph{&arena, 1};
  Node* seq;
  Node* emb;
  SdimSampling* sdim;

  Fixture(int num_hashes, int hash_bits, uint64_t seed = 5) {
    seq = graph.AddInput(kLen * kDim, true);
    emb = graph.AddInput(kFields * kDim, true);
    sdim = graph.Add<SdimSampling>(seq, kLen, emb, kTarget * kDim, num_hashes, hash_bits, seed);
  }

  double Projection(const float* x, int k) const {
    double p = 0;
    for (int j = 0; j < kDim; ++j)
      p += double{x[j]} * sdim->hyperplanes()[j * sdim->num_hashes() + k];
    return p;
  }
  double Margin(const float* x) const {
    double m = 1e30;
    for (int k = 0; k < sdim->num_hashes(); ++k) m = std::min(m, std::fabs(Projection(x, k)));
    return m;
  }
  // Draws vectors until each is at least `margin` away from every hyperplane,
  // so that finite differences do not change any code.
  void Redraw(float* x, Rng* rng, double margin) const {
    do {
      for (int j = 0; j < kDim; ++j) x[j] = rng->Uniform(-1, 1);
    } while (Margin(x) < margin);
  }

  // History rows and targets away from the hyperplanes, and about a third of
  // the rows near their sample's target, so that most groups have matches.
  void MakeInputs(std::vector<float>* seq_v, std::vector<float>* emb_v, double margin) const {
    Rng rng(11);
    seq_v->assign(kBatch * kLen * kDim, 0.0f);
    *emb_v = RandomValues(kBatch * kFields * kDim, 12);
    for (int b = 0; b < kBatch; ++b) {
      float* t = emb_v->data() + (b * kFields + kTarget) * kDim;
      Redraw(t, &rng, margin);
      for (int l = 0; l < kLen; ++l) {
        float* h = seq_v->data() + (b * kLen + l) * kDim;
        if (l % 3 == 0) {
          do {
            for (int j = 0; j < kDim; ++j) h[j] = t[j] + rng.Uniform(-0.1f, 0.1f);
          } while (Margin(h) < margin);
        } else {
          Redraw(h, &rng, margin);
        }
      }
    }
  }
};

// The layer's result by explicit loops over samples, groups and rows.
std::vector<double> Naive(const Fixture& f, const std::vector<float>& seq,
                          const std::vector<float>& emb, const std::vector<int32_t>& lengths) {
  const int m = f.sdim->num_hashes(), tau = f.sdim->hash_bits(), groups = m / tau;
  auto code = [&](const float* x, int g) {
    int c = 0;
    for (int k = 0; k < tau; ++k) c |= (f.Projection(x, k * groups + g) > 0 ? 1 : 0) << k;
    return c;
  };
  std::vector<double> out(kBatch * kDim, 0.0);
  for (int b = 0; b < kBatch; ++b) {
    const float* t = emb.data() + (b * kFields + kTarget) * kDim;
    for (int g = 0; g < groups; ++g) {
      std::vector<double> sum(kDim, 0.0);
      for (int l = 0; l < lengths[b]; ++l) {
        const float* h = seq.data() + (b * kLen + l) * kDim;
        if (code(h, g) != code(t, g)) continue;
        for (int j = 0; j < kDim; ++j) sum[j] += h[j];
      }
      double norm = 0;
      for (double v : sum) norm += v * v;
      norm = std::sqrt(norm);
      if (norm == 0) continue;
      for (int j = 0; j < kDim; ++j) out[b * kDim + j] += sum[j] / norm / groups;
    }
  }
  return out;
}

TEST(SdimSamplingTest, MatchesNaiveSampling) {
  for (auto [m, tau] : {std::pair{6, 2}, std::pair{6, 3}, std::pair{8, 1}, std::pair{12, 4}}) {
    SCOPED_TRACE(testing::Message() << "m " << m << " tau " << tau);
    Fixture f(m, tau);
    std::vector<float> seq, emb;
    f.MakeInputs(&seq, &emb, 0.0);
    // Padding holds garbage, which must not be read.
    const std::vector<int32_t> lengths = {8, 0, 3, 5};
    for (int b = 0; b < kBatch; ++b) {
      for (int i = lengths[b] * kDim; i < kLen * kDim; ++i) seq[b * kLen * kDim + i] = 1e6f;
    }
    f.sdim->set_lengths(lengths.data());
    f.graph.BindInput(f.seq, seq.data(), nullptr);
    f.graph.BindInput(f.emb, emb.data(), nullptr);
    f.graph.Forward(kBatch, {});
    const std::vector<double> ref = Naive(f, seq, emb, lengths);
    int nonzero = 0;
    for (int i = 0; i < kBatch * kDim; ++i) {
      EXPECT_NEAR(f.sdim->out()->value()[i], ref[i], 1e-5) << i;
      nonzero += ref[i] != 0;
    }
    EXPECT_GT(nonzero, 0);
    for (int j = 0; j < kDim; ++j) EXPECT_EQ(f.sdim->out()->value()[1 * kDim + j], 0.0f);
  }
}

TEST(SdimSamplingTest, BackwardMatchesFiniteDifferencesAwayFromHyperplanes) {
  for (auto [m, tau] : {std::pair{6, 2}, std::pair{6, 3}, std::pair{4, 1}}) {
    SCOPED_TRACE(testing::Message() << "m " << m << " tau " << tau);
    Fixture f(m, tau);
    std::vector<float> seq, emb;
    // eps = 1e-3 moves a projection by at most ~1e-3 * sum_j |r_jk| < 0.02.
    f.MakeInputs(&seq, &emb, 0.05);
    const std::vector<int32_t> lengths = {8, 0, 3, 5};
    f.sdim->set_lengths(lengths.data());
    Node* in[] = {f.seq, f.emb};
    Node* out[] = {f.sdim->out()};
    // The query gets no gradient (the codes are piecewise constant), which
    // the finite differences confirm here.
    ExpectGradientsMatch(&f.graph, &f.arena, in, {seq, emb}, out, kBatch);
  }
}

TEST(SdimSamplingTest, HyperplanesAreAFixedBufferDrawnFromTheSeed) {
  Fixture a(12, 3, 5), b(12, 3, 5), c(12, 3, 6);
  EXPECT_EQ(a.arena.num_parameters(), 0);
  ASSERT_EQ(a.arena.buffer_infos().size(), 1u);
  EXPECT_EQ(a.arena.buffer_infos()[0].name, "sdim.hyperplanes");
  EXPECT_EQ(a.arena.buffer_infos()[0].slot.size, kDim * 12);
  double sum = 0, sum2 = 0;
  for (int i = 0; i < kDim * 12; ++i) {
    EXPECT_EQ(a.sdim->hyperplanes()[i], b.sdim->hyperplanes()[i]);
    sum += a.sdim->hyperplanes()[i];
    sum2 += a.sdim->hyperplanes()[i] * a.sdim->hyperplanes()[i];
  }
  EXPECT_NE(a.sdim->hyperplanes()[0], c.sdim->hyperplanes()[0]);
  EXPECT_LT(std::fabs(sum / 48), 0.5);
  EXPECT_NEAR(sum2 / 48, 1.0, 0.5);
}

TEST(SdimSamplingTest, FlopsCountTheHashingAndSelectionProducts) {
  Fixture f(12, 3);
  // Hashing: (length + 1) x dim x 12 hyperplanes; selection: [4 groups, length]
  // x [length, dim] forward and its transpose backward.
  EXPECT_EQ(f.sdim->FlopsPerSample(), 2 * (kLen + 1) * kDim * 12 + 4 * kLen * kDim * 4);
}

}  // namespace
}  // namespace ctrps::nn
