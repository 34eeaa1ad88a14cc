#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "worker/nn/models/model_test_util.h"
#include "worker/nn/random.h"

namespace ctrps::nn::testing {
namespace {

// For SDIM: moves every history row and target at least `margin` away from
// the model's hyperplanes (the codes then survive finite differences), and
// plants rows near the target so that groups have matches.
void KeepAwayFromHyperplanes(CtrModel& model, SequenceData* data, double margin) {
  std::vector<const float*> planes;
  std::vector<int64_t> sizes;
  for (const ParamInfo& b : model.params().buffer_infos()) {
    if (b.name.find("hyperplanes") == std::string::npos) continue;
    planes.push_back(model.params().buffer(b.slot));
    sizes.push_back(b.slot.size / kDim);
  }
  ASSERT_EQ(planes.size(), 2u);
  Rng rng(17);
  auto margin_of = [&](const float* x) {
    double m = 1e30;
    for (size_t p = 0; p < planes.size(); ++p) {
      for (int k = 0; k < sizes[p]; ++k) {
        double dot = 0;
        for (int j = 0; j < kDim; ++j) dot += double{x[j]} * planes[p][j * sizes[p] + k];
        m = std::min(m, std::fabs(dot));
      }
    }
    return m;
  };
  auto redraw = [&](float* x, const float* near) {
    do {
      for (int j = 0; j < kDim; ++j) {
        x[j] = near != nullptr ? near[j] + rng.Uniform(-0.1f, 0.1f) : rng.Uniform(-1, 1);
      }
    } while (margin_of(x) < margin);
  };
  for (int b = 0; b < kBatch; ++b) {
    float* t = data->emb.data() + (b * kFields + 0) * kDim;
    redraw(t, nullptr);
    for (int l = 0; l < kLen1; ++l)
      redraw(data->seq1.data() + (b * kLen1 + l) * kDim, l % 2 ? nullptr : t);
    for (int l = 0; l < kLen2; ++l)
      redraw(data->seq2.data() + (b * kLen2 + l) * kDim, l % 2 ? nullptr : t);
  }
}

TEST(SdimModelTest, GradientsMatchFiniteDifferencesAwayFromHyperplanes) {
  auto away = [](CtrModel& model, SequenceData* data) {
    KeepAwayFromHyperplanes(model, data, 0.05);
  };
  CheckSequenceModelGradients(
      "type: SDIM hidden_units: [6, 5] sdim_num_hashes: 6 sdim_hash_bits: 2", true, away);
  CheckSequenceModelGradients(
      "type: SDIM hidden_units: [6] activation: 'dice' sdim_num_hashes: 8 sdim_hash_bits: 4", true,
      away);
}

}  // namespace
}  // namespace ctrps::nn::testing
