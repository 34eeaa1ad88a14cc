#include "common/config.h"

#include "gtest/gtest.h"

namespace ctrps {
namespace {

constexpr char kGood[] = R"(
cluster { num_servers: 2 num_workers: 2 }
table { name: "item" dim: 16 optimizer { kind: ADAGRAD learning_rate: 0.05 } }
table { name: "user" dim: 16 }
data {
  format: CSV
  dir: "/data"
  train: "train.csv"
  feature { name: "item" }
  feature { name: "hist" kind: SEQUENCE table: "item" max_len: 20 }
  feature { name: "user" }
}
model { type: DEEPFM hidden_units: [400, 400] }
)";

TEST(ConfigTest, ParsesAndFillsDefaults) {
  auto config = ParseExperimentConfig(kGood, "conf/good.pbtxt");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->name(), "good");
  EXPECT_EQ(config->table_size(), 2);
  EXPECT_EQ(config->data().feature(0).table(), "item");
  EXPECT_EQ(config->data().feature(1).hash_as(), "item");
  EXPECT_EQ(config->data().feature(0).column(), "item");
  EXPECT_EQ(config->train().batch_size(), 4096);
  ASSERT_NE(FindTable(*config, "user"), nullptr);
  EXPECT_EQ(FindTable(*config, "nope"), nullptr);
}

void ExpectError(const std::string& text, const std::string& expected) {
  auto config = ParseExperimentConfig(text, "conf/x.pbtxt");
  ASSERT_FALSE(config.ok()) << "accepted: " << text;
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(config.status().message()).find(expected), std::string::npos)
      << "got: " << config.status().message() << "\nwanted: " << expected;
}

TEST(ConfigTest, SyntaxErrorNamesLineAndColumn) {
  ExpectError("cluster {\n  num_servers: 2\n  oops\n}\n", "conf/x.pbtxt:4:1:");
}

TEST(ConfigTest, UnknownFieldIsRejected) {
  ExpectError(
      "cluster {\n  num_servrs: 2\n}\n",
      "conf/x.pbtxt:2:13: Message type \"ctrps.ClusterConfig\" has no field named \"num_servrs\"");
}

TEST(ConfigTest, ZeroDimIsRejectedWithLine) {
  ExpectError("table {\n  name: \"item\"\n  dim: 0\n}\n",
              "conf/x.pbtxt:3:3: table \"item\" has dim 0");
}

TEST(ConfigTest, FeatureNamingMissingTableIsRejected) {
  ExpectError("table { name: \"item\" dim: 4 }\ndata {\n  feature { name: \"user\" }\n}\n",
              "conf/x.pbtxt:3:13: feature \"user\" names table \"user\", which is not defined");
}

TEST(ConfigTest, NegativeLearningRateIsRejected) {
  ExpectError("table {\n  name: \"t\" dim: 4\n  optimizer { learning_rate: -0.1 }\n}\n",
              "conf/x.pbtxt:3:15: table \"t\": negative learning_rate -0.1");
  ExpectError("train { dense_optimizer { learning_rate: -1 } }", "negative dense learning_rate");
}

TEST(ConfigTest, NegativeFreeDiskGuardIsRejected) {
  ExpectError("cluster {\n  min_free_disk_mb: -5\n}\n",
              "conf/x.pbtxt:2:3: cluster.min_free_disk_mb must be >= 0");
}

TEST(ConfigTest, ModelFieldOutOfItsRangeIsRejectedWithLine) {
  ExpectError("model {\n  type: DNN\n  dropout: 1.0\n}\n",
              "conf/x.pbtxt:3:3: model.dropout must be in [0, 1), got 1");
  ExpectError("model { hidden_units: [8, 0] }", "model.hidden_units[1] must be >= 1, got 0");
  ExpectError("model { num_heads: 0 }", "model.num_heads must be >= 1, got 0");
  ExpectError("model { sdim_hash_bits: 17 }", "model.sdim_hash_bits must be in [1, 16], got 17");
}

TEST(ConfigTest, OverridesReplaceFields) {
  auto config = ParseExperimentConfig(
      kGood, "conf/good.pbtxt",
      {"data.dir=/elsewhere", "train.epochs=5", "model.hidden_units=[10,20,30]"});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->data().dir(), "/elsewhere");
  EXPECT_EQ(config->train().epochs(), 5);
  ASSERT_EQ(config->model().hidden_units_size(), 3);
  EXPECT_EQ(config->model().hidden_units(2), 30);
}

TEST(ConfigTest, BadOverrideIsRejected) {
  auto config = ParseExperimentConfig(kGood, "conf/good.pbtxt", {"train.epoch=5"});
  ASSERT_FALSE(config.ok());
  EXPECT_NE(std::string(config.status().message()).find("has no field \"epoch\""),
            std::string::npos);
  EXPECT_FALSE(ParseExperimentConfig(kGood, "c", {"train.epochs=five"}).ok());
}

TEST(ConfigTest, TableDefaultsMakeTablesForFeatures) {
  auto config = ParseExperimentConfig(R"(
table_defaults { dim: 10 optimizer { kind: ADAM learning_rate: 0.001 } }
table { name: "item" dim: 16 }
data { feature { name: "user" } feature { name: "item" } feature { name: "hist" table: "item" } }
)",
                                      "conf/d.pbtxt");
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_EQ(config->table_size(), 2);
  const TableConfig* user = FindTable(*config, "user");
  ASSERT_NE(user, nullptr);
  EXPECT_EQ(user->dim(), 10);
  EXPECT_EQ(user->optimizer().kind(), SparseOptimizerConfig::ADAM);
  EXPECT_EQ(FindTable(*config, "item")->dim(), 16);
  ExpectError("table_defaults { dim: 0 }\ndata { feature { name: \"u\" } }",
              "conf/x.pbtxt:1:18: table_defaults has dim 0");
}

TEST(ConfigTest, SequenceTargetNamesAFeature) {
  auto config = ParseExperimentConfig(R"(
table { name: "item" dim: 4 }
data {
  feature { name: "hist" kind: SEQUENCE table: "item" target: "item" }
  feature { name: "item" }
}
)",
                                      "conf/t.pbtxt");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->data().feature(0).target(), "item");
  EXPECT_FALSE(config->data().feature(1).has_target());
}

TEST(ConfigTest, BadSequenceTargetIsRejectedWithLine) {
  ExpectError(
      "table { name: \"item\" dim: 4 }\ndata {\n  feature { name: \"item\" }\n"
      "  feature { name: \"hist\" kind: SEQUENCE table: \"item\"\n    target: \"itm\" }\n}\n",
      "conf/x.pbtxt:5:5: feature \"hist\": target \"itm\" is not a feature");
  ExpectError(
      "table { name: \"item\" dim: 4 }\ndata {\n"
      "  feature { name: \"h1\" kind: SEQUENCE table: \"item\" }\n"
      "  feature { name: \"h2\" kind: SEQUENCE table: \"item\" target: \"h1\" }\n}\n",
      "conf/x.pbtxt:4:53: feature \"h2\": target \"h1\" is itself a SEQUENCE feature");
  ExpectError(
      "table { name: \"item\" dim: 4 }\ndata {\n  feature { name: \"item\" }\n"
      "  feature { name: \"cate\" table: \"item\" target: \"item\" }\n}\n",
      "feature \"cate\": target is only for SEQUENCE features");
}

TEST(ConfigTest, MissingFileIsNotFound) {
  auto config = LoadExperimentConfig("/nonexistent/conf.pbtxt");
  EXPECT_EQ(config.status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace ctrps
