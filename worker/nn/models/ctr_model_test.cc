#include "worker/nn/models/ctr_model.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "common/model_tables.h"
#include "gtest/gtest.h"
#include "worker/nn/models/model_registry.h"
#include "worker/nn/models/model_test_util.h"

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

namespace ctrps::nn::testing {
namespace {

TEST(CtrModelTest, EveryTypeHasExactlyOneRegisteredBuilder) {
  const google::protobuf::EnumDescriptor* types = ModelConfig::Type_descriptor();
  for (int i = 0; i < types->value_count(); ++i) {
    const auto type = static_cast<ModelConfig::Type>(types->value(i)->number());
    int registrations = 0;
    for (const ModelRegistration* r : RegisteredModels()) registrations += r->type == type;
    EXPECT_EQ(registrations, 1) << types->value(i)->name();
    EXPECT_NE(FindModelRegistration(type), nullptr) << types->value(i)->name();
  }
  EXPECT_EQ(RegisteredModels().size(), static_cast<size_t>(types->value_count()));
}

TEST(CtrModelTest, EveryModelBuildsWithItsDeclaredTraits) {
  for (const ModelRegistration* r : RegisteredModels()) {
    const std::string name = ModelConfig::Type_Name(r->type);
    SCOPED_TRACE(name);
    const ModelTraits& traits = GetModelTraits(r->type);
    ModelConfig config;
    config.set_type(r->type);
    const std::vector<SequenceSpec> none;
    auto model = CreateModel(config, kFields, kDim, 1, traits.sequence() ? SequenceSpecs() : none);
    ASSERT_TRUE(model.ok()) << model.status();
    EXPECT_EQ((*model)->NeedsLinear(), traits.needs_linear());
    EXPECT_EQ(traits.num_outputs(), 1);
  }
}

TEST(CtrModelTest, TraitsOfTheFirstOrderAndSequenceModels) {
  EXPECT_TRUE(GetModelTraits(ModelConfig::DEEPFM).needs_linear());
  EXPECT_FALSE(GetModelTraits(ModelConfig::DNN).needs_linear());
  EXPECT_TRUE(GetModelTraits(ModelConfig::DIN).sequence());
  EXPECT_FALSE(GetModelTraits(ModelConfig::DEEPFM).sequence());
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

TEST(CtrModelTest, SameSeedGivesIdenticalParameters) {
  const std::string text = "type: DEEPFM hidden_units: [8, 8]";
  auto a = Make(text, 42), b = Make(text, 42), c = Make(text, 43);
  ASSERT_EQ(a->params().values().size(), b->params().values().size());
  EXPECT_TRUE(std::equal(a->params().values().begin(), a->params().values().end(),
                         b->params().values().begin()));
  EXPECT_FALSE(std::equal(a->params().values().begin(), a->params().values().end(),
                          c->params().values().begin()));
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
                + 4 * (kLen1 + kLen2) * kDim * 4);         // selection, 4 groups
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
           "type: DIN attention_activation: 'swish'",
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
}  // namespace ctrps::nn::testing
