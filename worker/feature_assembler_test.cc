#include "worker/feature_assembler.h"

#include <map>

#include "common/config.h"
#include "common/model_tables.h"
#include "gtest/gtest.h"

namespace ctrps {
namespace {

// user, item (table "item"), hist_items (SEQUENCE over table "item", max_len 3,
// target item); dim 2.
ExperimentConfig SequenceConfig(ModelConfig::Type type) {
  auto c = ParseExperimentConfig(R"pb(
                                   table_defaults { dim: 2 }
                                   data {
                                     label: "label"
                                     feature { name: "user" }
                                     feature { name: "item" table: "item" }
                                     feature {
                                       name: "hist"
                                       kind: SEQUENCE
                                       table: "item"
                                       max_len: 3
                                       target: "item"
                                       pooling: SUM
                                     }
                                   }
                                   model { hidden_units: [ 4 ] }
                                 )pb",
                                 "test", {"model.type=" + ModelConfig::Type_Name(type)});
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? *c : ExperimentConfig();
}

// Sample 0: user 1, item 10, hist [10, 12]; sample 1: user 2, item 11,
// hist [13, 14, 15, 11] (one more than max_len).
Batch TwoSamples() {
  Batch b;
  b.Reset(3, 1);
  b.size = 2;
  b.labels = {1, 0};
  b.fields[0].keys = {1, 2};
  b.fields[0].offsets = {0, 1, 2};
  b.fields[1].keys = {10, 11};
  b.fields[1].offsets = {0, 1, 2};
  b.fields[2].keys = {10, 12, 13, 14, 15, 11};
  b.fields[2].offsets = {0, 2, 6};
  return b;
}

// Row of key k: (k, k + 0.5), then any extra server columns as 0.
std::vector<std::vector<float>> Rows(const KeyDedup& dedup, const FeatureAssembler& a) {
  std::vector<std::vector<float>> rows;
  for (size_t t = 0; t < dedup.tables().size(); ++t) {
    const int sd = a.server_dims()[t];
    std::vector<float> r(dedup.tables()[t].unique_keys.size() * sd, 0.0f);
    for (size_t i = 0; i < dedup.tables()[t].unique_keys.size(); ++i) {
      const float k = static_cast<float>(dedup.tables()[t].unique_keys[i]);
      r[i * sd] = k;
      r[i * sd + 1] = k + 0.5f;
    }
    rows.push_back(std::move(r));
  }
  return rows;
}

// TwoSamples() de-duplicated and assembled by `a` (rows from Rows()); emb
// starts at -1 so that every slot Assemble leaves alone shows.
struct Assembled {
  Assembled(const ExperimentConfig& config, FeatureAssembler& a)
      : batch(TwoSamples()), dedup(config.data()) {
    dedup.Run(batch);
    rows = Rows(dedup, a);
    std::vector<const float*> ptrs;
    for (auto& r : rows) ptrs.push_back(r.data());
    a.Assemble(batch, dedup, ptrs, emb.data(), nullptr);
  }
  Batch batch;
  KeyDedup dedup;
  std::vector<std::vector<float>> rows;
  std::vector<float> emb = std::vector<float>(2 * 3 * 2, -1.0f);
};

TEST(FeatureAssemblerTest, SequenceModelsKeepSequencesWithNewestMaxLenRows) {
  // Every sequence model, by its traits.
  const google::protobuf::EnumDescriptor* types = ModelConfig::Type_descriptor();
  for (int t = 0; t < types->value_count(); ++t) {
    const auto type = static_cast<ModelConfig::Type>(types->value(t)->number());
    if (!GetModelTraits(type).sequence()) continue;
    ExperimentConfig config = SequenceConfig(type);
    auto a = FeatureAssembler::Create(config);
    ASSERT_TRUE(a.ok()) << a.status();
    ASSERT_EQ(a->sequence_specs().size(), 1u);
    EXPECT_EQ(a->sequence_specs()[0].field, 2);
    EXPECT_EQ(a->sequence_specs()[0].target_field, 1);
    EXPECT_EQ(a->sequence_specs()[0].max_len, 3);

    const std::vector<float> emb = Assembled(config, *a).emb;

    EXPECT_EQ(emb[(0 * 3 + 1) * 2], 10.0f);
    EXPECT_EQ(emb[(1 * 3 + 1) * 2 + 1], 11.5f);
    for (int b = 0; b < 2; ++b) {
      EXPECT_EQ(emb[(b * 3 + 2) * 2], 0.0f);
      EXPECT_EQ(emb[(b * 3 + 2) * 2 + 1], 0.0f);
    }
    ASSERT_EQ(a->sequences().size(), 1u);
    const nn::SequenceInput& s = a->sequences()[0];
    EXPECT_EQ(s.field, 2);
    EXPECT_EQ(s.target_field, 1);
    EXPECT_EQ(s.max_len, 3);
    EXPECT_EQ(s.lengths[0], 2);
    EXPECT_EQ(s.lengths[1], 3);
    const std::vector<float> want = {10, 10.5, 12, 12.5, 0,  0,      // sample 0, padded
                                     14, 14.5, 15, 15.5, 11, 11.5};  // sample 1: the newest 3
    EXPECT_EQ(std::vector<float>(s.emb, s.emb + want.size()), want);
  }
}

TEST(FeatureAssemblerTest, SequenceGradientsShareTheTargetsTable) {
  ExperimentConfig config = SequenceConfig(ModelConfig::DIN);
  auto a = FeatureAssembler::Create(config);
  ASSERT_TRUE(a.ok()) << a.status();
  Assembled in(config, *a);
  const Batch& batch = in.batch;
  const KeyDedup& dedup = in.dedup;

  // d_emb: 1 in the item slots; d_seq: 100 * (position + 1) at valid positions.
  std::vector<float> d_emb(2 * 3 * 2, 0.0f);
  for (int b = 0; b < 2; ++b) d_emb[(b * 3 + 1) * 2] = d_emb[(b * 3 + 1) * 2 + 1] = 1.0f;
  std::vector<float> d_seq(2 * 3 * 2, 0.0f);
  const int lengths[2] = {2, 3};
  for (int b = 0; b < 2; ++b) {
    for (int l = 0; l < lengths[b]; ++l)
      d_seq[(b * 3 + l) * 2] = d_seq[(b * 3 + l) * 2 + 1] = 100.0f * (l + 1);
  }
  std::vector<std::vector<float>> grads;
  a->Scatter(batch, dedup, d_emb.data(), nullptr, {d_seq.data()}, 0.5f, &grads);

  std::map<uint64_t, float> item_grad;
  for (size_t t = 0; t < dedup.tables().size(); ++t) {
    if (a->table_names()[t] != "item") continue;
    const TableKeys& tk = dedup.tables()[t];
    const int sd = a->server_dims()[t];
    for (size_t i = 0; i < tk.unique_keys.size(); ++i) {
      EXPECT_EQ(grads[t][i * sd], grads[t][i * sd + 1]);
      item_grad[tk.unique_keys[i]] = grads[t][i * sd];
    }
  }
  EXPECT_FLOAT_EQ(item_grad[10],
                  0.5f * (1 + 100));  // target of sample 0 and its oldest history row
  EXPECT_FLOAT_EQ(item_grad[11],
                  0.5f * (1 + 300));  // target of sample 1 and its newest history row
  EXPECT_FLOAT_EQ(item_grad[12], 0.5f * 200);
  EXPECT_FLOAT_EQ(item_grad[13], 0.0f);  // beyond max_len
  EXPECT_FLOAT_EQ(item_grad[14], 0.5f * 100);
  EXPECT_FLOAT_EQ(item_grad[15], 0.5f * 200);
}

TEST(FeatureAssemblerTest, OtherModelsPoolSequences) {
  ExperimentConfig config = SequenceConfig(ModelConfig::DNN);
  auto a = FeatureAssembler::Create(config);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_TRUE(a->sequence_specs().empty());
  const std::vector<float> emb = Assembled(config, *a).emb;
  EXPECT_TRUE(a->sequences().empty());
  EXPECT_EQ(emb[(0 * 3 + 2) * 2], 22.0f);  // SUM of 10 and 12
  EXPECT_EQ(emb[(0 * 3 + 2) * 2 + 1], 23.0f);
}

TEST(FeatureAssemblerTest, UnknownTargetIsRejected) {
  ExperimentConfig config = SequenceConfig(ModelConfig::DIN);
  config.mutable_data()->mutable_feature(2)->set_target("nope");
  auto a = FeatureAssembler::Create(config);
  EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(a.status().message().find("hist"), std::string::npos);
}

}  // namespace
}  // namespace ctrps
