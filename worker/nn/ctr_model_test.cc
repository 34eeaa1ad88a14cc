#include "worker/nn/ctr_model.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "worker/nn/gradient_check.h"
#include "worker/nn/random.h"

// Counts C++ allocations while g_counting is set (this binary only).
std::atomic<bool> g_counting{false};
std::atomic<long> g_allocations{0};

void* CountedAlloc(std::size_t n, std::size_t align) {
  if (g_counting) ++g_allocations;
  n = (n + align - 1) / align * align;
  void* p = std::aligned_alloc(align, n == 0 ? align : n);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

void* operator new(std::size_t n) { return CountedAlloc(n, alignof(std::max_align_t)); }
void* operator new(std::size_t n, std::align_val_t a) {
  return CountedAlloc(n, static_cast<std::size_t>(a));
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

namespace ctrps::nn {
namespace {

constexpr int kBatch = 4, kFields = 3, kDim = 4;

ModelConfig Config(const std::string& text) {
  ModelConfig config;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &config)) << text;
  return config;
}

std::unique_ptr<CtrModel> Make(const std::string& text, uint64_t seed = 1) {
  auto model = CreateModel(Config(text), kFields, kDim, seed);
  EXPECT_TRUE(model.ok()) << model.status();
  return model.ok() ? *std::move(model) : nullptr;
}

// Checks d(loss)/d(emb), d(loss)/d(linear) and every parameter gradient of
// the model against central differences, loss = sum_b r_b * logit_b.
void CheckModelGradients(const std::string& text, bool training = true) {
  SCOPED_TRACE(text);
  std::unique_ptr<CtrModel> model = Make(text);
  ASSERT_NE(model, nullptr);
  RandomizeParameters(&model->params(), 7);
  std::vector<float> emb = RandomValues(kBatch * kFields * kDim, 1);
  std::vector<float> linear = RandomValues(kBatch * kFields, 2);
  const std::vector<float> seed = RandomValues(kBatch, 3);
  ModelInput in{kBatch, kFields, kDim, emb.data(), model->NeedsLinear() ? linear.data() : nullptr};
  std::vector<float> logits(kBatch);
  auto loss = [&] {
    model->Forward(in, training, logits.data());
    double l = 0;
    for (int b = 0; b < kBatch; ++b) l += double{seed[b]} * logits[b];
    return l;
  };
  if (!training) {
    // Move the running statistics off their initial values first.
    model->Forward(in, true, logits.data());
  }
  model->params().ZeroGrads();
  loss();
  std::vector<float> d_emb(emb.size(), std::nanf("")), d_linear(linear.size(), std::nanf(""));
  ModelInputGrad grad{d_emb.data(), model->NeedsLinear() ? d_linear.data() : nullptr};
  model->Backward(in, seed.data(), &grad);
  const std::vector<float> param_grads(model->params().grads().begin(),
                                       model->params().grads().end());
  GradCheckOptions options;
  ExpectFiniteDifferencesMatch("emb", loss, emb.data(), d_emb.data(), emb.size(), options);
  if (model->NeedsLinear()) {
    ExpectFiniteDifferencesMatch("linear", loss, linear.data(), d_linear.data(), linear.size(),
                                 options);
  }
  for (const ParamInfo& p : model->params().parameters()) {
    ExpectFiniteDifferencesMatch(p.name, loss, model->params().value(p.slot),
                                 param_grads.data() + p.slot.offset, p.slot.size, options);
  }
}

TEST(CtrModelTest, LrGradientsMatchFiniteDifferences) { CheckModelGradients("type: LR"); }

TEST(CtrModelTest, FmGradientsMatchFiniteDifferences) { CheckModelGradients("type: FM"); }

TEST(CtrModelTest, DnnGradientsMatchFiniteDifferences) {
  CheckModelGradients("type: DNN hidden_units: [6, 5]");
  CheckModelGradients("type: DNN hidden_units: [6, 5] batch_norm: true activation: 'prelu'");
  CheckModelGradients("type: DNN hidden_units: [6] batch_norm: true activation: 'dice'");
  CheckModelGradients("type: DNN hidden_units: [6] batch_norm: true activation: 'dice'",
                      /*training=*/false);
}

TEST(CtrModelTest, WideDeepGradientsMatchFiniteDifferences) {
  CheckModelGradients("type: WIDE_DEEP hidden_units: [6, 5]");
}

TEST(CtrModelTest, DeepFmGradientsMatchFiniteDifferences) {
  CheckModelGradients("type: DEEPFM hidden_units: [6, 5]");
  CheckModelGradients("type: DEEPFM hidden_units: [5] batch_norm: true");
}

TEST(CtrModelTest, DcnGradientsMatchFiniteDifferences) {
  CheckModelGradients("type: DCN hidden_units: [6, 5] num_cross_layers: 2");
  CheckModelGradients("type: DCN num_cross_layers: 3");
}

TEST(CtrModelTest, DcnV2GradientsMatchFiniteDifferences) {
  CheckModelGradients("type: DCNV2 hidden_units: [6, 5] num_cross_layers: 2");
  CheckModelGradients("type: DCNV2 hidden_units: [6] num_cross_layers: 2 stacked: true");
  CheckModelGradients("type: DCNV2 hidden_units: [6] num_cross_layers: 2 low_rank: 3");
  CheckModelGradients(
      "type: DCNV2 hidden_units: [6] num_cross_layers: 2 low_rank: 3 stacked: true");
  CheckModelGradients("type: DCNV2 num_cross_layers: 2");
}

TEST(CtrModelTest, FinalMlpGradientsMatchFiniteDifferences) {
  CheckModelGradients(
      "type: FINALMLP mlp1_hidden_units: [6, 4] mlp2_hidden_units: [6] fs_hidden_units: [5]");
  CheckModelGradients(
      "type: FINALMLP mlp1_hidden_units: [6, 4] mlp2_hidden_units: [8] num_heads: 2 "
      "mlp1_batch_norm: true");
  CheckModelGradients(
      "type: FINALMLP mlp1_hidden_units: [4] mlp2_hidden_units: [4] use_feature_selection: false");
}

TEST(CtrModelTest, NeedsLinearForModelsWithAFirstOrderTerm) {
  EXPECT_TRUE(Make("type: LR")->NeedsLinear());
  EXPECT_TRUE(Make("type: FM")->NeedsLinear());
  EXPECT_TRUE(Make("type: WIDE_DEEP hidden_units: [4]")->NeedsLinear());
  EXPECT_TRUE(Make("type: DEEPFM hidden_units: [4]")->NeedsLinear());
  EXPECT_FALSE(Make("type: DNN hidden_units: [4]")->NeedsLinear());
  EXPECT_FALSE(Make("type: DCN hidden_units: [4]")->NeedsLinear());
  EXPECT_FALSE(Make("type: DCNV2 hidden_units: [4]")->NeedsLinear());
  EXPECT_FALSE(Make("type: FINALMLP mlp1_hidden_units: [4] mlp2_hidden_units: [4]")->NeedsLinear());
}

TEST(CtrModelTest, FmLogitIsFirstOrderPlusPairwiseInteractions) {
  std::unique_ptr<CtrModel> model = Make("type: FM");
  model->params().values()[0] = 0.25f;  // the bias
  std::vector<float> emb = RandomValues(kBatch * kFields * kDim, 1);
  std::vector<float> linear = RandomValues(kBatch * kFields, 2);
  std::vector<float> logits(kBatch);
  model->Forward({kBatch, kFields, kDim, emb.data(), linear.data()}, false, logits.data());
  for (int b = 0; b < kBatch; ++b) {
    double ref = 0.25;
    for (int f = 0; f < kFields; ++f) ref += linear[b * kFields + f];
    for (int i = 0; i < kFields; ++i)
      for (int j = i + 1; j < kFields; ++j)
        for (int k = 0; k < kDim; ++k)
          ref += double{emb[(b * kFields + i) * kDim + k]} * emb[(b * kFields + j) * kDim + k];
    EXPECT_NEAR(logits[b], ref, 1e-5);
  }
}

TEST(CtrModelTest, ParameterCountsFollowTheComposition) {
  const int d = kFields * kDim;  // 12
  // MLP 12 -> 6 -> 5 -> 1.
  const int mlp = (d * 6 + 6) + (6 * 5 + 5) + (5 + 1);
  EXPECT_EQ(Make("type: DNN hidden_units: [6, 5]")->params().num_parameters(), mlp);
  EXPECT_EQ(Make("type: DEEPFM hidden_units: [6, 5]")->params().num_parameters(), 1 + mlp);
  EXPECT_EQ(Make("type: WIDE_DEEP hidden_units: [6, 5]")->params().num_parameters(), mlp);
  // DCN: 2 cross layers of (w, b), MLP 12 -> 6, fc (12 + 6) -> 1.
  EXPECT_EQ(Make("type: DCN hidden_units: [6] num_cross_layers: 2")->params().num_parameters(),
            2 * 2 * d + (d * 6 + 6) + (d + 6 + 1));
  // DCNv2 stacked, low rank 3: 2 x (U, V, b), MLP 12 -> 6, fc 6 -> 1.
  EXPECT_EQ(Make("type: DCNV2 hidden_units: [6] num_cross_layers: 2 low_rank: 3 stacked: true")
                ->params()
                .num_parameters(),
            2 * (2 * d * 3 + d) + (d * 6 + 6) + (6 + 1));
  // FinalMLP: 2 x (ctx 4, gate 4 -> 5 -> 12), MLPs 12 -> 4, fusion 4 + 4 + 1 + 4 * 4 / 2...
  // with 2 heads: heads of 2 x 2, so w_xy has 2 * 2 * 2 = 8.
  EXPECT_EQ(Make("type: FINALMLP mlp1_hidden_units: [4] mlp2_hidden_units: [4] "
                 "fs_hidden_units: [5] num_heads: 2")
                ->params()
                .num_parameters(),
            2 * (kDim + (kDim * 5 + 5) + (5 * d + d)) + 2 * (d * 4 + 4) + (4 + 4 + 1 + 8));
}

TEST(CtrModelTest, FinalMlpFeatureSelectionStartsAsIdentityGate) {
  // FuxiCTR: a zero context through ReLU layers with zero biases gives
  // 2 * sigmoid(0) = 1, so the streams start from the raw embeddings; with
  // feature selection off the logits must then be the same.
  auto with_fs = Make("type: FINALMLP mlp1_hidden_units: [4] mlp2_hidden_units: [4]", 5);
  auto without = Make(
      "type: FINALMLP mlp1_hidden_units: [4] mlp2_hidden_units: [4] use_feature_selection: false",
      5);
  std::vector<float> emb = RandomValues(kBatch * kFields * kDim, 1);
  std::vector<float> a(kBatch), b(kBatch);
  ModelInput in{kBatch, kFields, kDim, emb.data(), nullptr};
  with_fs->Forward(in, false, a.data());
  // Copy the MLP and fusion parameters (registered after the gates) across.
  const auto& pa = with_fs->params().parameters();
  const auto& pb = without->params().parameters();
  for (size_t i = 0; i < pb.size(); ++i) {
    const ParamInfo& src = pa[pa.size() - pb.size() + i];
    ASSERT_EQ(src.name, pb[i].name);
    std::copy(with_fs->params().value(src.slot), with_fs->params().value(src.slot) + src.slot.size,
              without->params().value(pb[i].slot));
  }
  without->Forward(in, false, b.data());
  for (int i = 0; i < kBatch; ++i) EXPECT_NEAR(a[i], b[i], 1e-5);
}

TEST(CtrModelTest, SameSeedGivesIdenticalParameters) {
  const std::string text = "type: DEEPFM hidden_units: [8, 8]";
  auto a = Make(text, 42), b = Make(text, 42), c = Make(text, 43);
  ASSERT_EQ(a->params().values().size(), b->params().values().size());
  EXPECT_TRUE(std::equal(a->params().values().begin(), a->params().values().end(),
                         b->params().values().begin()));
  EXPECT_FALSE(std::equal(a->params().values().begin(), a->params().values().end(),
                          c->params().values().begin()));
}

TEST(CtrModelTest, DropoutOnlyInTraining) {
  auto model = Make("type: DNN hidden_units: [16, 16] dropout: 0.5");
  std::vector<float> emb = RandomValues(kBatch * kFields * kDim, 1);
  ModelInput in{kBatch, kFields, kDim, emb.data(), nullptr};
  std::vector<float> e1(kBatch), e2(kBatch), t1(kBatch), t2(kBatch);
  model->Forward(in, false, e1.data());
  model->Forward(in, false, e2.data());
  model->Forward(in, true, t1.data());
  model->Forward(in, true, t2.data());
  EXPECT_EQ(e1, e2);
  EXPECT_NE(t1, t2);
}

TEST(CtrModelTest, EvaluationDoesNotDependOnTheRestOfTheBatch) {
  auto model = Make("type: DNN hidden_units: [8] batch_norm: true activation: 'dice'");
  std::vector<float> emb = RandomValues(kBatch * kFields * kDim, 1);
  std::vector<float> logits(kBatch), single(1);
  model->Forward({kBatch, kFields, kDim, emb.data(), nullptr}, true, logits.data());
  model->Forward({kBatch, kFields, kDim, emb.data(), nullptr}, false, logits.data());
  model->Forward({1, kFields, kDim, emb.data(), nullptr}, false, single.data());
  EXPECT_FLOAT_EQ(single[0], logits[0]);
}

TEST(CtrModelTest, DeepFmFlopsCountTheMlpAndFm) {
  auto model = Make("type: DEEPFM hidden_units: [8, 8]");
  const int d = kFields * kDim;
  EXPECT_EQ(model->FlopsPerSample(), 2 * (d * 8 + 8 * 8 + 8 * 1) + (2 * kFields * kDim + 2 * kDim));
}

TEST(CtrModelTest, TrainingStepsAfterWarmUpDoNotAllocate) {
  for (const std::string text : {
           "type: DEEPFM hidden_units: [16, 16] dropout: 0.1 batch_norm: true",
           "type: DCNV2 hidden_units: [16] low_rank: 4",
           "type: DCN hidden_units: [16]",
           "type: FINALMLP mlp1_hidden_units: [8] mlp2_hidden_units: [8] fs_hidden_units: [4] "
           "num_heads: 2 activation: 'dice'",
       }) {
    auto model = Make(text);
    constexpr int kRows = 64;
    std::vector<float> emb = RandomValues(kRows * kFields * kDim, 1);
    std::vector<float> linear = RandomValues(kRows * kFields, 2);
    std::vector<float> d_logits = RandomValues(kRows, 3);
    std::vector<float> logits(kRows), d_emb(emb.size()), d_linear(linear.size());
    ModelInput in{kRows, kFields, kDim, emb.data(), linear.data()};
    ModelInputGrad grad{d_emb.data(), d_linear.data()};
    auto step = [&] {
      model->params().ZeroGrads();
      model->Forward(in, true, logits.data());
      model->Backward(in, d_logits.data(), &grad);
      model->Forward(in, false, logits.data());
    };
    step();
    g_allocations = 0;
    g_counting = true;
    step();
    step();
    g_counting = false;
    EXPECT_EQ(g_allocations, 0) << text;
  }
}

TEST(CtrModelTest, BadConfigsAreInvalidArgument) {
  for (const std::string text : {
           "type: DNN hidden_units: [4, 0]",
           "type: DNN hidden_units: [4] dropout: 1.0",
           "type: DNN hidden_units: [4] activation: 'swish'",
           "type: DCN num_cross_layers: -1",
           "type: DCNV2 low_rank: -2",
           "type: FINALMLP mlp1_hidden_units: [4] mlp2_hidden_units: [6] num_heads: 4",
           "type: FINALMLP mlp1_hidden_units: [4] mlp2_hidden_units: [4] num_heads: 0",
       }) {
    auto model = CreateModel(Config(text), kFields, kDim, 1);
    EXPECT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument) << text;
  }
  EXPECT_EQ(CreateModel(Config("type: LR"), 0, kDim, 1).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CreateModel(Config("type: LR"), kFields, 0, 1).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(CtrModelTest, SequenceModelsNeedSequencesAndOthersTakeNone) {
  for (const std::string text : {"type: DIN", "type: SDIM", "type: MEANPOOL"}) {
    EXPECT_EQ(CreateModel(Config(text), kFields, kDim, 1).status().code(),
              absl::StatusCode::kInvalidArgument)
        << text;
  }
  const std::vector<SequenceSpec> one = {{.field = 1, .target_field = 0, .max_len = 3}};
  EXPECT_EQ(
      CreateModel(Config("type: DNN hidden_units: [4]"), kFields, kDim, 1, one).status().code(),
      absl::StatusCode::kInvalidArgument);
}

// Sequence models: F = 3 fields of D = 4, field 1 is a history of up to 5
// rows with field 0 as its target; field 2 a second history of up to 3 rows
// (target 0 too).
constexpr int kLen1 = 5, kLen2 = 3;
const std::vector<SequenceSpec> kSpecs = {{.field = 1, .target_field = 0, .max_len = kLen1},
                                          {.field = 2, .target_field = 0, .max_len = kLen2}};

struct SequenceData {
  std::vector<float> emb = RandomValues(kBatch * kFields * kDim, 1);
  std::vector<float> seq1 = RandomValues(kBatch * kLen1 * kDim, 4);
  std::vector<float> seq2 = RandomValues(kBatch * kLen2 * kDim, 5);
  std::vector<int32_t> len1 = {5, 0, 2, 4};
  std::vector<int32_t> len2 = {1, 3, 0, 3};

  ModelInput Input(int batch = kBatch) {
    ModelInput in{batch, kFields, kDim, emb.data(), nullptr};
    in.sequences = {{1, 0, kLen1, seq1.data(), len1.data()},
                    {2, 0, kLen2, seq2.data(), len2.data()}};
    return in;
  }
};

std::unique_ptr<CtrModel> MakeSequenceModel(const std::string& text, uint64_t seed = 1,
                                            const std::vector<SequenceSpec>& specs = kSpecs) {
  auto model = CreateModel(Config(text), kFields, kDim, seed, specs);
  EXPECT_TRUE(model.ok()) << model.status();
  return model.ok() ? *std::move(model) : nullptr;
}

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

// Checks d(loss)/d(emb), d(loss)/d(each sequence) and every parameter
// gradient against central differences, loss = sum_b r_b * logit_b.
void CheckSequenceModelGradients(const std::string& text, bool training = true) {
  SCOPED_TRACE(text);
  std::unique_ptr<CtrModel> model = MakeSequenceModel(text);
  ASSERT_NE(model, nullptr);
  RandomizeParameters(&model->params(), 7);
  SequenceData data;
  if (text.find("SDIM") != std::string::npos) KeepAwayFromHyperplanes(*model, &data, 0.05);
  ModelInput in = data.Input();
  const std::vector<float> seed = RandomValues(kBatch, 3);
  std::vector<float> logits(kBatch);
  auto loss = [&] {
    model->Forward(in, training, logits.data());
    double l = 0;
    for (int b = 0; b < kBatch; ++b) l += double{seed[b]} * logits[b];
    return l;
  };
  if (!training) model->Forward(in, true, logits.data());
  model->params().ZeroGrads();
  loss();
  std::vector<float> d_emb(data.emb.size(), std::nanf(""));
  std::vector<float> d_seq1(data.seq1.size(), std::nanf("")),
      d_seq2(data.seq2.size(), std::nanf(""));
  ModelInputGrad grad{d_emb.data(), nullptr};
  grad.d_seq_emb = {d_seq1.data(), d_seq2.data()};
  model->Backward(in, seed.data(), &grad);
  const std::vector<float> param_grads(model->params().grads().begin(),
                                       model->params().grads().end());
  // The sequence fields' slots of emb are not read, and get zero.
  for (int b = 0; b < kBatch; ++b) {
    for (int j = 0; j < 2 * kDim; ++j) EXPECT_EQ(d_emb[(b * kFields + 1) * kDim + j], 0.0f);
  }
  GradCheckOptions options;
  ExpectFiniteDifferencesMatch("emb", loss, data.emb.data(), d_emb.data(), d_emb.size(), options);
  ExpectFiniteDifferencesMatch("seq1", loss, data.seq1.data(), d_seq1.data(), d_seq1.size(),
                               options);
  ExpectFiniteDifferencesMatch("seq2", loss, data.seq2.data(), d_seq2.data(), d_seq2.size(),
                               options);
  for (const ParamInfo& p : model->params().parameters()) {
    ExpectFiniteDifferencesMatch(p.name, loss, model->params().value(p.slot),
                                 param_grads.data() + p.slot.offset, p.slot.size, options);
  }
}

TEST(CtrModelTest, MeanPoolGradientsMatchFiniteDifferences) {
  CheckSequenceModelGradients("type: MEANPOOL hidden_units: [6, 5]");
  CheckSequenceModelGradients("type: MEANPOOL hidden_units: [6] batch_norm: true");
}

TEST(CtrModelTest, DinGradientsMatchFiniteDifferences) {
  CheckSequenceModelGradients(
      "type: DIN hidden_units: [6, 5] attention_hidden_units: [8, 4] attention_activation: 'relu'");
  CheckSequenceModelGradients(
      "type: DIN hidden_units: [6] activation: 'dice' attention_hidden_units: [8, 4] "
      "attention_activation: 'dice'");
  CheckSequenceModelGradients(
      "type: DIN hidden_units: [6] activation: 'dice' attention_hidden_units: [8] "
      "attention_activation: 'dice'",
      /*training=*/false);
  CheckSequenceModelGradients(
      "type: DIN hidden_units: [6] attention_hidden_units: [4] attention_activation: 'prelu'");
}

TEST(CtrModelTest, SdimGradientsMatchFiniteDifferencesAwayFromHyperplanes) {
  CheckSequenceModelGradients(
      "type: SDIM hidden_units: [6, 5] sdim_num_hashes: 6 sdim_hash_bits: 2");
  CheckSequenceModelGradients(
      "type: SDIM hidden_units: [6] activation: 'dice' sdim_num_hashes: 8 sdim_hash_bits: 4");
}

TEST(CtrModelTest, MeanPoolIsDnnOverTheMeanOfTheHistory) {
  // Same seed, same MLP registrations: identical parameters.
  auto meanpool = MakeSequenceModel("type: MEANPOOL hidden_units: [8, 4]", 9);
  auto dnn = Make("type: DNN hidden_units: [8, 4]", 9);
  SequenceData data;
  std::vector<float> pooled = data.emb;
  for (int b = 0; b < kBatch; ++b) {
    for (int j = 0; j < kDim; ++j) {
      double s1 = 0, s2 = 0;
      for (int l = 0; l < data.len1[b]; ++l) s1 += data.seq1[(b * kLen1 + l) * kDim + j];
      for (int l = 0; l < data.len2[b]; ++l) s2 += data.seq2[(b * kLen2 + l) * kDim + j];
      pooled[(b * kFields + 1) * kDim + j] = data.len1[b] ? s1 / data.len1[b] : 0.0;
      pooled[(b * kFields + 2) * kDim + j] = data.len2[b] ? s2 / data.len2[b] : 0.0;
    }
  }
  std::vector<float> a(kBatch), b(kBatch);
  meanpool->Forward(data.Input(), false, a.data());
  dnn->Forward({kBatch, kFields, kDim, pooled.data(), nullptr}, false, b.data());
  for (int i = 0; i < kBatch; ++i) EXPECT_NEAR(a[i], b[i], 1e-5);
}

TEST(CtrModelTest, SequenceSlotsAndPaddingAreNotRead) {
  for (const std::string text : {
           "type: MEANPOOL hidden_units: [8]",
           "type: DIN hidden_units: [8] attention_hidden_units: [4]",
           "type: SDIM hidden_units: [8] sdim_num_hashes: 6 sdim_hash_bits: 3",
       }) {
    SCOPED_TRACE(text);
    auto model = MakeSequenceModel(text);
    SequenceData data;
    std::vector<float> a(kBatch), b(kBatch);
    model->Forward(data.Input(), false, a.data());
    for (int i = 0; i < kBatch; ++i) {
      for (int j = 0; j < kDim; ++j) {
        data.emb[(i * kFields + 1) * kDim + j] = 1e5f;
        data.emb[(i * kFields + 2) * kDim + j] = -1e5f;
      }
      for (int l = data.len1[i]; l < kLen1; ++l) data.seq1[(i * kLen1 + l) * kDim] = 1e5f;
      for (int l = data.len2[i]; l < kLen2; ++l) data.seq2[(i * kLen2 + l) * kDim] = 1e5f;
    }
    model->Forward(data.Input(), false, b.data());
    for (int i = 0; i < kBatch; ++i) EXPECT_FLOAT_EQ(a[i], b[i]);
  }
}

TEST(CtrModelTest, DinAttentionDependsOnTheTarget) {
  auto din = MakeSequenceModel("type: DIN hidden_units: [8] attention_hidden_units: [4]");
  RandomizeParameters(&din->params(), 3);
  SequenceData data;
  std::vector<float> a(kBatch), b(kBatch);
  din->Forward(data.Input(), false, a.data());
  // A target with the same MLP input but a different query: only through
  // attention can the logit change, so zero the MLP's weights on field 0.
  const auto& params = din->params().parameters();
  auto w = std::find_if(params.begin(), params.end(),
                        [](const ParamInfo& p) { return p.name == "dnn.0.linear.weight"; });
  ASSERT_NE(w, params.end());  // [8, F * D]
  for (int u = 0; u < 8; ++u) {
    for (int j = 0; j < kDim; ++j) din->params().value(w->slot)[u * kFields * kDim + j] = 0.0f;
  }
  din->Forward(data.Input(), false, a.data());
  for (int j = 0; j < kDim; ++j) data.emb[(0 * kFields + 0) * kDim + j] += 0.5f;
  din->Forward(data.Input(), false, b.data());
  EXPECT_NE(a[0], b[0]);
  EXPECT_FLOAT_EQ(a[2], b[2]);
}

TEST(CtrModelTest, SequenceModelFlopsCountAttentionAndHashing) {
  const int d = kFields * kDim;
  const int mlp = 2 * (d * 8 + 8 * 1);
  EXPECT_EQ(MakeSequenceModel("type: MEANPOOL hidden_units: [8]")->FlopsPerSample(), mlp);
  const int att = 2 * (4 * kDim * 6 + 6 * 1) + 2 * kDim;  // per history row
  EXPECT_EQ(MakeSequenceModel("type: DIN hidden_units: [8] attention_hidden_units: [6]")
                ->FlopsPerSample(),
            mlp + (kLen1 + kLen2) * att);
  EXPECT_EQ(MakeSequenceModel("type: SDIM hidden_units: [8] sdim_num_hashes: 12 sdim_hash_bits: 3")
                ->FlopsPerSample(),
            mlp + 2 * (kLen1 + 1 + kLen2 + 1) * kDim * 12  // hashing
                + 4 * (kLen1 + kLen2) * kDim * 4);           // selection, 4 groups
}

TEST(CtrModelTest, SequenceModelParameterCounts) {
  const int d = kFields * kDim;
  const int mlp = (d * 8 + 8) + (8 + 1);
  EXPECT_EQ(MakeSequenceModel("type: MEANPOOL hidden_units: [8]")->params().num_parameters(), mlp);
  EXPECT_EQ(MakeSequenceModel("type: SDIM hidden_units: [8]")->params().num_parameters(), mlp);
  // Two attention units (one per sequence) of 4D -> 6 (Dice alpha 6) -> 1.
  const int att = (4 * kDim * 6 + 6) + 6 + (6 + 1);
  EXPECT_EQ(MakeSequenceModel("type: DIN hidden_units: [8] attention_hidden_units: [6]")
                ->params()
                .num_parameters(),
            mlp + 2 * att);
}

TEST(CtrModelTest, BadSequenceSpecsAreInvalidArgument) {
  auto status = [](const std::string& text, const std::vector<SequenceSpec>& specs) {
    return CreateModel(Config(text), kFields, kDim, 1, specs).status();
  };
  const std::string din = "type: DIN hidden_units: [4] attention_hidden_units: [4]";
  for (const std::vector<SequenceSpec>& specs : std::vector<std::vector<SequenceSpec>>{
           {{.field = 3, .target_field = 0, .max_len = 2}},
           {{.field = -1, .target_field = 0, .max_len = 2}},
           {{.field = 1, .target_field = 0, .max_len = 0}},
           {{.field = 1, .target_field = -1, .max_len = 2}},
           {{.field = 1, .target_field = 1, .max_len = 2}},
           {{.field = 1, .target_field = 0, .max_len = 2},
            {.field = 1, .target_field = 0, .max_len = 2}},
           {{.field = 1, .target_field = 2, .max_len = 2},
            {.field = 2, .target_field = 0, .max_len = 2}},
       }) {
    EXPECT_EQ(status(din, specs).code(), absl::StatusCode::kInvalidArgument);
  }
  EXPECT_TRUE(status("type: MEANPOOL", {{.field = 1, .target_field = -1, .max_len = 2}}).ok());
  const std::vector<SequenceSpec> ok = {{.field = 1, .target_field = 0, .max_len = 2}};
  for (const std::string text : {
           "type: DIN attention_hidden_units: [4, 0]",
           "type: DIN attention_activation: 'tanh'",
           "type: SDIM sdim_num_hashes: 10 sdim_hash_bits: 3",
           "type: SDIM sdim_num_hashes: 0",
           "type: SDIM sdim_num_hashes: 34 sdim_hash_bits: 17",
           "type: MEANPOOL hidden_units: [0]",
       }) {
    EXPECT_EQ(status(text, ok).code(), absl::StatusCode::kInvalidArgument) << text;
  }
  EXPECT_NE(std::string(status(din, {{.field = 1, .target_field = -1, .max_len = 2}}).message())
                .find("target"),
            std::string::npos);
}

TEST(CtrModelTest, SequenceTrainingStepsAfterWarmUpDoNotAllocate) {
  for (const std::string text : {
           "type: MEANPOOL hidden_units: [16] batch_norm: true",
           "type: DIN hidden_units: [16] activation: 'dice' attention_hidden_units: [8, 4]",
           "type: SDIM hidden_units: [16] sdim_num_hashes: 12 sdim_hash_bits: 3",
       }) {
    constexpr int kRows = 64, kL = 20;
    const std::vector<SequenceSpec> specs = {{.field = 1, .target_field = 0, .max_len = kL}};
    auto model = MakeSequenceModel(text, 1, specs);
    std::vector<float> emb = RandomValues(kRows * kFields * kDim, 1);
    std::vector<float> seq = RandomValues(kRows * kL * kDim, 2);
    std::vector<int32_t> lengths(kRows);
    for (int b = 0; b < kRows; ++b) lengths[b] = (b * 7) % (kL + 1);
    std::vector<float> d_logits = RandomValues(kRows, 3);
    std::vector<float> logits(kRows), d_emb(emb.size()), d_seq(seq.size());
    ModelInput in{kRows, kFields, kDim, emb.data(), nullptr};
    in.sequences = {{1, 0, kL, seq.data(), lengths.data()}};
    ModelInputGrad grad{d_emb.data(), nullptr};
    grad.d_seq_emb = {d_seq.data()};
    auto step = [&] {
      model->params().ZeroGrads();
      model->Forward(in, true, logits.data());
      model->Backward(in, d_logits.data(), &grad);
      model->Forward(in, false, logits.data());
    };
    step();
    // Shorter histories reuse the buffers of longer ones.
    for (int32_t& l : lengths) l /= 2;
    g_allocations = 0;
    g_counting = true;
    step();
    step();
    g_counting = false;
    EXPECT_EQ(g_allocations, 0) << text;
  }
}

}  // namespace
}  // namespace ctrps::nn
