#include "common/field_ranges.h"

#include <cmath>

#include "common/proto/config.pb.h"
#include "gtest/gtest.h"

namespace ctrps {
namespace {

TEST(FieldRangesTest, DefaultsAreInRange) {
  EXPECT_FALSE(FindFieldRangeViolation(ExperimentConfig(), "").has_value());
  EXPECT_TRUE(CheckFieldRanges(ModelConfig(), "model").ok());
}

TEST(FieldRangesTest, ReportsTheFirstViolationWithItsPath) {
  ExperimentConfig config;
  config.mutable_model()->add_hidden_units(4);
  config.mutable_model()->add_hidden_units(-2);
  config.mutable_model()->set_num_heads(0);
  std::optional<FieldRangeViolation> v = FindFieldRangeViolation(config, "");
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->message, "model.hidden_units[1] must be >= 1, got -2");
  ASSERT_EQ(v->path.size(), 2u);
  EXPECT_EQ(v->path[0], std::make_pair(std::string("model"), -1));
  EXPECT_EQ(v->path[1], std::make_pair(std::string("hidden_units"), 1));
}

TEST(FieldRangesTest, BoundsAreInclusiveOrExclusiveAsDeclared) {
  ModelConfig model;
  model.set_dropout(0.0f);
  model.set_sdim_hash_bits(16);
  EXPECT_TRUE(CheckFieldRanges(model, "model").ok());
  model.set_dropout(1.0f);
  absl::Status s = CheckFieldRanges(model, "model");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "model.dropout must be in [0, 1), got 1");
  model.set_dropout(NAN);
  EXPECT_FALSE(CheckFieldRanges(model, "model").ok());
  model.set_dropout(0.5f);
  model.set_sdim_hash_bits(17);
  EXPECT_EQ(CheckFieldRanges(model, "m").message(), "m.sdim_hash_bits must be in [1, 16], got 17");
  model.set_sdim_hash_bits(0);
  EXPECT_FALSE(CheckFieldRanges(model, "m").ok());
}

}  // namespace
}  // namespace ctrps
