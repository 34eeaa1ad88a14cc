#include "worker/predictor.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/config.h"
#include "gtest/gtest.h"
#include "worker/export.h"
#include "worker/half.h"
#include "worker/nn/bce_loss.h"
#include "worker/serving_test_util.h"

namespace ctrps {
namespace {

namespace fs = std::filesystem;
using serving_test::BuildCheckpoint;
using serving_test::DataLines;
using serving_test::kCsvHeader;
using serving_test::NewTempDir;
using serving_test::ParseLines;
using serving_test::SmallConfig;
using serving_test::TestCheckpoint;

// What a key without an exported row reads in the reference computation.
enum class Missing { kAsTraining, kZeros };

// Scores computed without the predictor: the stored rows (those with count
// >= min_count; f16-rounded if asked), FeatureAssembler and the model's
// Forward in evaluation mode, as Trainer::Evaluate scores a batch. Counts
// how many looked-up keys had no row, per table.
std::vector<float> DirectScores(const TestCheckpoint& ckpt, const std::vector<std::string>& lines,
                                uint32_t min_count, bool fp16, Missing missing,
                                std::map<std::string, int>* misses = nullptr) {
  const ExperimentConfig& config = ckpt.config;
  Batch batch = ParseLines(config, lines);
  KeyDedup dedup(config.data());
  dedup.Run(batch);
  auto assembler = FeatureAssembler::Create(config);
  EXPECT_TRUE(assembler.ok());
  std::vector<std::vector<float>> rows;
  std::vector<const float*> ptrs;
  for (size_t t = 0; t < dedup.tables().size(); ++t) {
    const TableKeys& tk = dedup.tables()[t];
    const int sd = assembler->server_dims()[t];
    TableConfig tc = *FindTable(config, tk.name);
    tc.set_dim(sd);
    const bool admission = tc.min_count() > 1 || tc.admit_probability() < 1 || min_count > 0;
    const auto& stored = ckpt.rows.at(tk.name);
    rows.emplace_back(tk.unique_keys.size() * sd);
    for (size_t i = 0; i < tk.unique_keys.size(); ++i) {
      float* out = &rows.back()[i * sd];
      auto it = stored.find(tk.unique_keys[i]);
      if (it != stored.end() && it->second.meta.count >= min_count) {
        for (int d = 0; d < sd; ++d) {
          const float w = it->second.weights[d];
          out[d] = fp16 ? HalfToFloat(FloatToHalf(w)) : w;
        }
        continue;
      }
      if (misses != nullptr) ++(*misses)[tk.name];
      if (missing == Missing::kAsTraining && !admission) {
        InitializeRow(tc, tk.unique_keys[i], out, sd);
      } else {
        std::fill(out, out + sd, 0.0f);
      }
    }
    ptrs.push_back(rows.back().data());
  }
  const int B = batch.size, F = assembler->num_fields(), D = assembler->dim();
  std::vector<float> emb(B * F * D), linear(B * F), logits(B), probs(B);
  assembler->Assemble(batch, dedup, ptrs, emb.data(), linear.data());
  auto model = nn::CreateModel(config.model(), F, D, config.train().seed());
  EXPECT_TRUE(model.ok());
  auto values = (*model)->params().values();
  auto buffers = (*model)->params().buffers();
  std::copy(ckpt.dense_values.begin(), ckpt.dense_values.end(), values.begin());
  std::copy(ckpt.dense_buffers.begin(), ckpt.dense_buffers.end(), buffers.begin());
  const bool uses_linear = (*model)->NeedsLinear();
  nn::ModelInput in{B, F, D, emb.data(), uses_linear ? linear.data() : nullptr};
  (*model)->Forward(in, /*training=*/false, logits.data());
  nn::SigmoidProbabilities(logits, probs);
  return probs;
}

std::vector<std::string> WithHeader(const std::vector<std::string>& lines) {
  std::vector<std::string> all = {kCsvHeader};
  all.insert(all.end(), lines.begin(), lines.end());
  return all;
}

class PredictorTest : public ::testing::Test {
 protected:
  // A checkpoint over the keys of DataLines(200, 3) (one in five left out)
  // and its export.
  void Build(ModelConfig::Type type, bool fp16 = false, uint32_t min_count = 0,
             bool batch_norm = true) {
    root_ = NewTempDir();
    ckpt_ = BuildCheckpoint(SmallConfig(type, batch_norm), root_ + "/ckpt", 2, DataLines(200, 3));
    export_ = root_ + "/export";
    auto m = ExportFromCheckpoint(ckpt_.dir, export_, fp16, min_count);
    ASSERT_TRUE(m.ok()) << m.status();
    // Seen lines and lines with unseen users and items.
    lines_ = DataLines(120, 3);
    for (const std::string& l : DataLines(40, 99)) {
      lines_.push_back(absl::StrReplaceAll(l, {{",u", ",newuser"}, {",i", ",newitem"}}));
    }
  }
  std::unique_ptr<Predictor> Load() {
    auto p = Predictor::Load(export_);
    EXPECT_TRUE(p.ok()) << p.status();
    return p.ok() ? std::move(*p) : nullptr;
  }
  static void ExpectNear(const std::vector<float>& a, const std::vector<float>& b, float tol) {
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], tol) << "sample " << i;
  }
  static float MaxDiff(const std::vector<float>& a, const std::vector<float>& b) {
    float m = 0;
    for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
    return m;
  }

  std::string root_, export_;
  TestCheckpoint ckpt_;
  std::vector<std::string> lines_;
};

TEST_F(PredictorTest, DeepFmScoresEqualTheDirectComputation) {
  Build(ModelConfig::DEEPFM);
  auto predictor = Load();
  ASSERT_NE(predictor, nullptr);
  std::map<std::string, int> misses;
  const std::vector<float> want =
      DirectScores(ckpt_, lines_, 0, false, Missing::kAsTraining, &misses);
  // The data must exercise both kinds of missing key.
  EXPECT_GT(misses["user"], 0);
  EXPECT_GT(misses["item"], 0);

  auto got = predictor->PredictLines(WithHeader(lines_));
  ASSERT_TRUE(got.ok()) << got.status();
  ExpectNear(*got, want, 1e-6f);

  std::vector<float> probs;
  ASSERT_TRUE(predictor->Predict(ParseLines(ckpt_.config, lines_), &probs).ok());
  ExpectNear(probs, want, 1e-6f);
  EXPECT_EQ(predictor->config().SerializeAsString(), ckpt_.config.SerializeAsString());
}

TEST_F(PredictorTest, LrScoresEqualTheDirectComputation) {
  Build(ModelConfig::LR, false, 0, /*batch_norm=*/false);
  auto predictor = Load();
  ASSERT_NE(predictor, nullptr);
  auto got = predictor->PredictLines(WithHeader(lines_));
  ASSERT_TRUE(got.ok()) << got.status();
  ExpectNear(*got, DirectScores(ckpt_, lines_, 0, false, Missing::kAsTraining), 1e-6f);
}

// A key without a row reads its initial value where training would (no
// admission), zeros where admission holds rows back.
TEST_F(PredictorTest, MissingKeysReadInitialValuesOrZerosAsInTraining) {
  Build(ModelConfig::LR, false, 0, false);
  auto predictor = Load();
  ASSERT_NE(predictor, nullptr);
  auto got = predictor->PredictLines(WithHeader(lines_));
  ASSERT_TRUE(got.ok());
  // Reading zeros for the "user" table's missing keys would be wrong, and
  // visibly so (UNIFORM init, scale 0.5).
  EXPECT_GT(MaxDiff(*got, DirectScores(ckpt_, lines_, 0, false, Missing::kZeros)), 1e-3f);
  ExpectNear(*got, DirectScores(ckpt_, lines_, 0, false, Missing::kAsTraining), 1e-6f);
}

TEST_F(PredictorTest, RowsDroppedByMinCountReadZeros) {
  Build(ModelConfig::LR, false, /*min_count=*/3, false);
  auto predictor = Load();
  ASSERT_NE(predictor, nullptr);
  auto got = predictor->PredictLines(WithHeader(lines_));
  ASSERT_TRUE(got.ok());
  ExpectNear(*got, DirectScores(ckpt_, lines_, 3, false, Missing::kZeros), 1e-6f);
  EXPECT_GT(MaxDiff(*got, DirectScores(ckpt_, lines_, 0, false, Missing::kAsTraining)), 1e-3f);
}

TEST_F(PredictorTest, Fp16ScoresUseHalfRoundedRows) {
  Build(ModelConfig::DEEPFM, /*fp16=*/true);
  auto predictor = Load();
  ASSERT_NE(predictor, nullptr);
  auto got = predictor->PredictLines(WithHeader(lines_));
  ASSERT_TRUE(got.ok()) << got.status();
  ExpectNear(*got, DirectScores(ckpt_, lines_, 0, true, Missing::kAsTraining), 1e-6f);
  ExpectNear(*got, DirectScores(ckpt_, lines_, 0, false, Missing::kAsTraining), 2e-3f);
}

TEST_F(PredictorTest, HeaderlessFormatScoresEveryLine) {
  auto config = ParseExperimentConfig(R"(
    table { name: "a" dim: 3 init { kind: UNIFORM scale: 0.5 } }
    table { name: "b" dim: 3 min_count: 2 }
    data {
      format: LIBSVM
      feature { name: "a" column_index: 0 }
      feature { name: "b" column_index: 1 }
    }
    model { type: FM }
  )",
                                      "libsvm.pbtxt");
  ASSERT_TRUE(config.ok()) << config.status();
  std::vector<std::string> lines;
  for (int i = 0; i < 60; ++i)
    lines.push_back(absl::StrCat(i % 2, " ", i % 13, ":1 ", i % 7, ":1"));
  root_ = NewTempDir();
  ckpt_ = BuildCheckpoint(*config, root_ + "/ckpt", 1, lines, /*skip_every=*/4);
  export_ = root_ + "/export";
  ASSERT_TRUE(ExportFromCheckpoint(ckpt_.dir, export_, false, 0).ok());
  auto predictor = Load();
  ASSERT_NE(predictor, nullptr);
  auto got = predictor->PredictLines(lines);
  ASSERT_TRUE(got.ok()) << got.status();
  ExpectNear(*got, DirectScores(ckpt_, lines, 0, false, Missing::kAsTraining), 1e-6f);
  auto bad = predictor->PredictLines({lines[0], "1 x:y"});
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("line 2: "), std::string::npos) << bad.status();
}

TEST_F(PredictorTest, ConcurrentPredictGivesIdenticalResults) {
  Build(ModelConfig::DEEPFM);
  auto predictor = Load();
  ASSERT_NE(predictor, nullptr);
  // Batches of different sizes, so pooled models see changing shapes.
  std::vector<Batch> batches;
  std::vector<std::vector<float>> want;
  for (int n : {1, 7, 64, 160, 33}) {
    std::vector<std::string> part(lines_.begin(), lines_.begin() + n);
    batches.push_back(ParseLines(ckpt_.config, part));
    want.emplace_back();
    ASSERT_TRUE(predictor->Predict(batches.back(), &want.back()).ok());
  }
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0), errors(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::vector<float> probs;
      for (int round = 0; round < 30; ++round) {
        const size_t b = (round + t) % batches.size();
        if (!predictor->Predict(batches[b], &probs).ok()) ++errors[t];
        if (probs != want[b]) ++mismatches[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t) {
    EXPECT_EQ(errors[t], 0) << "thread " << t;
    EXPECT_EQ(mismatches[t], 0) << "thread " << t;
  }
}

TEST_F(PredictorTest, BadLineIsInvalidArgumentNamingTheLine) {
  Build(ModelConfig::LR, false, 0, false);
  auto predictor = Load();
  ASSERT_NE(predictor, nullptr);
  std::vector<std::string> lines = WithHeader({lines_[0], lines_[1], "1,u1,i2"});
  auto got = predictor->PredictLines(lines);
  EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(got.status().message().find("line 4: "), std::string::npos) << got.status();

  auto header = predictor->PredictLines({"label,user,item,tags", lines_[0]});
  EXPECT_EQ(header.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(header.status().message().find("price"), std::string::npos) << header.status();

  auto only_header = predictor->PredictLines({kCsvHeader});
  ASSERT_TRUE(only_header.ok());
  EXPECT_TRUE(only_header->empty());
}

TEST_F(PredictorTest, MisshapenBatchIsInvalidArgument) {
  Build(ModelConfig::LR, false, 0, false);
  auto predictor = Load();
  ASSERT_NE(predictor, nullptr);
  Batch batch = ParseLines(ckpt_.config, {lines_[0], lines_[1]});
  std::vector<float> probs;
  Batch fewer = batch;
  fewer.fields.pop_back();
  EXPECT_EQ(predictor->Predict(fewer, &probs).code(), absl::StatusCode::kInvalidArgument);
  Batch short_keys = batch;
  short_keys.fields[0].keys.pop_back();
  EXPECT_EQ(predictor->Predict(short_keys, &probs).code(), absl::StatusCode::kInvalidArgument);
  Batch no_values = batch;
  no_values.fields[3].values.clear();  // "price" is NUMERIC
  absl::Status s = predictor->Predict(no_values, &probs);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("price"), std::string::npos) << s;
}

class PredictorLoadErrorTest : public PredictorTest {
 protected:
  void SetUp() override { Build(ModelConfig::DEEPFM); }
  void ExpectLoadError(absl::StatusCode code, const std::string& names) {
    auto p = Predictor::Load(export_);
    EXPECT_EQ(p.status().code(), code) << p.status();
    EXPECT_NE(p.status().message().find(names), std::string::npos) << p.status();
  }
  std::string Read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  void RewriteManifest(const std::function<void(ExportManifest*)>& change) {
    auto m = ReadExportManifest(export_);
    ASSERT_TRUE(m.ok());
    change(&*m);
    std::string text;
    google::protobuf::TextFormat::PrintToString(*m, &text);
    serving_test::WriteFile(export_ + "/manifest.pbtxt", text);
  }
};

TEST_F(PredictorLoadErrorTest, MissingManifestIsNotFound) {
  fs::remove(export_ + "/manifest.pbtxt");
  ExpectLoadError(absl::StatusCode::kNotFound, export_ + "/manifest.pbtxt");
}

TEST_F(PredictorLoadErrorTest, DamagedManifestIsDataLossWithTheLine) {
  serving_test::WriteFile(export_ + "/manifest.pbtxt", "fp16: true\ntable { dim: x }\n");
  ExpectLoadError(absl::StatusCode::kDataLoss, export_ + "/manifest.pbtxt:2:");
}

TEST_F(PredictorLoadErrorTest, TruncatedEmbFileIsDataLoss) {
  const std::string path = export_ + "/item.1.emb";
  const std::string bytes = Read(path);
  serving_test::WriteFile(path, bytes.substr(0, bytes.size() - 10));
  ExpectLoadError(absl::StatusCode::kDataLoss, path + ": truncated");
}

TEST_F(PredictorLoadErrorTest, WrongMagicIsDataLoss) {
  const std::string path = export_ + "/user.0.emb";
  std::string bytes = Read(path);
  bytes.replace(0, 8, "NOTANEMB");
  serving_test::WriteFile(path, bytes);
  ExpectLoadError(absl::StatusCode::kDataLoss, path + ": not an embedding file (bad magic)");
}

TEST_F(PredictorLoadErrorTest, MissingEmbFileIsNotFound) {
  fs::remove(export_ + "/price.0.emb");
  ExpectLoadError(absl::StatusCode::kNotFound, export_ + "/price.0.emb");
}

TEST_F(PredictorLoadErrorTest, DenseFileOfTheWrongSizeIsDataLoss) {
  const std::string path = export_ + "/dense.bin";
  serving_test::WriteFile(path, Read(path) + "xxxx");
  ExpectLoadError(absl::StatusCode::kDataLoss, path);
}

TEST_F(PredictorLoadErrorTest, DenseSizesThatDoNotFitTheModelAreDataLoss) {
  RewriteManifest([](ExportManifest* m) { m->set_dense_values(m->dense_values() + 16); });
  ExpectLoadError(absl::StatusCode::kDataLoss, "dense values");
}

TEST_F(PredictorLoadErrorTest, RowCountThatDisagreesWithTheManifestIsDataLoss) {
  RewriteManifest([](ExportManifest* m) { m->mutable_table(0)->set_rows(m->table(0).rows() + 1); });
  ExpectLoadError(absl::StatusCode::kDataLoss, "table \"user\" has");
}

TEST_F(PredictorLoadErrorTest, DtypeThatDisagreesWithTheManifestIsDataLoss) {
  RewriteManifest([](ExportManifest* m) { m->set_fp16(true); });
  ExpectLoadError(absl::StatusCode::kDataLoss, export_ + "/user.0.emb: dim 5 f32");
}

TEST_F(PredictorLoadErrorTest, TableMissingFromTheManifestIsDataLoss) {
  RewriteManifest([](ExportManifest* m) { m->mutable_table()->DeleteSubrange(1, 1); });
  ExpectLoadError(absl::StatusCode::kDataLoss, "no table \"item\"");
}

}  // namespace
}  // namespace ctrps
