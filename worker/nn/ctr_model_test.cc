#include "worker/nn/ctr_model.h"

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

TEST(CtrModelTest, SequenceModelsAreUnimplemented) {
  for (const std::string text : {"type: DIN", "type: SDIM", "type: MEANPOOL"}) {
    EXPECT_EQ(CreateModel(Config(text), kFields, kDim, 1).status().code(),
              absl::StatusCode::kUnimplemented)
        << text;
  }
}

}  // namespace
}  // namespace ctrps::nn
