#include "worker/data/sample_parser.h"

#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/hash.h"
#include "gtest/gtest.h"
#include "worker/data/data_test_util.h"
#include "worker/data/line_reader.h"
#include "worker/data/reader.h"

namespace ctrps {
namespace {

using testing_util::ParseData;
using testing_util::ReadLines;
using testing_util::SharedPath;

uint64_t Key(const std::string& hash_as, std::string_view value) {
  return FeatureKey(HashBytes(hash_as), value);
}

std::unique_ptr<SampleParser> MakeParser(const std::string& text) {
  auto parser = SampleParser::Create(ParseData(text));
  EXPECT_TRUE(parser.ok()) << parser.status();
  return parser.ok() ? std::move(*parser) : nullptr;
}

std::string Message(const absl::Status& s) { return std::string(s.message()); }

// Parses every line; returns how many failed, with the first error.
int ParseAll(SampleParser* parser, const std::vector<std::string>& lines, Batch* batch,
             std::string* first_error) {
  int bad = 0;
  for (const std::string& line : lines) {
    absl::Status s = parser->Parse(line, batch);
    if (!s.ok() && bad++ == 0) *first_error = Message(s);
  }
  return bad;
}

TEST(SampleParserTest, CsvColumnsByHeaderName) {
  auto parser = MakeParser(R"(
    format: CSV
    feature { name: "user" }
    feature { name: "item" }
    feature { name: "price" kind: NUMERIC }
  )");
  ASSERT_NE(parser, nullptr);
  ASSERT_TRUE(parser->BindHeader("item,label,price,user", "x.csv").ok());
  Batch batch;
  parser->ResetBatch(&batch);
  ASSERT_TRUE(parser->Parse("17,1,2.5,u9", &batch).ok());
  ASSERT_TRUE(parser->Parse(",0,,u1", &batch).ok());
  ASSERT_EQ(batch.size, 2);
  EXPECT_EQ(batch.labels, (std::vector<float>{1, 0}));
  EXPECT_EQ(batch.fields[0].keys, (std::vector<uint64_t>{Key("user", "u9"), Key("user", "u1")}));
  EXPECT_EQ(batch.fields[1].keys,
            (std::vector<uint64_t>{Key("item", "17"), MissingKey(HashBytes("item"))}));
  EXPECT_EQ(batch.fields[1].offsets, (std::vector<int32_t>{0, 1, 2}));
  EXPECT_EQ(batch.fields[2].values, (std::vector<float>{2.5f, 0.0f}));
  EXPECT_EQ(batch.fields[2].keys[0], MissingKey(HashBytes("price")));
  EXPECT_TRUE(batch.fields[0].values.empty());
}

TEST(SampleParserTest, FilesMayOrderColumnsDifferently) {
  auto parser = MakeParser("feature { name: \"a\" } feature { name: \"b\" }");
  ASSERT_NE(parser, nullptr);
  Batch batch;
  parser->ResetBatch(&batch);
  ASSERT_TRUE(parser->BindHeader("label,a,b", "1.csv").ok());
  ASSERT_TRUE(parser->Parse("1,x,y", &batch).ok());
  ASSERT_TRUE(parser->BindHeader("b,a,label", "2.csv").ok());
  ASSERT_TRUE(parser->Parse("y,x,1", &batch).ok());
  EXPECT_EQ(batch.fields[0].keys[0], batch.fields[0].keys[1]);
  EXPECT_EQ(batch.fields[1].keys[0], batch.fields[1].keys[1]);
  // Back to the first file's columns; a failed bind keeps the current one.
  parser->SelectHeader(0);
  EXPECT_FALSE(parser->BindHeader("label,a", "3.csv").ok());
  ASSERT_TRUE(parser->Parse("1,x,y", &batch).ok());
  EXPECT_EQ(batch.fields[0].keys[2], batch.fields[0].keys[0]);
  EXPECT_EQ(batch.fields[1].keys[2], batch.fields[1].keys[0]);
}

TEST(SampleParserTest, SharedHashAsGivesSameKeys) {
  auto parser = MakeParser(R"(
    feature { name: "item" }
    feature { name: "hist" kind: SEQUENCE table: "item" max_len: 5 }
  )");
  ASSERT_NE(parser, nullptr);
  ASSERT_TRUE(parser->BindHeader("label,item,hist", "x.csv").ok());
  Batch batch;
  parser->ResetBatch(&batch);
  ASSERT_TRUE(parser->Parse("0,42,7^42", &batch).ok());
  EXPECT_EQ(batch.fields[1].keys, (std::vector<uint64_t>{Key("item", "7"), Key("item", "42")}));
  EXPECT_EQ(batch.fields[0].keys[0], batch.fields[1].keys[1]);
}

TEST(SampleParserTest, MissingHeaderColumnNamesFileAndColumn) {
  auto parser = MakeParser("feature { name: \"user\" } feature { name: \"item\" }");
  ASSERT_NE(parser, nullptr);
  absl::Status s = parser->BindHeader("label,user", "data/train.csv").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Message(s),
            "data/train.csv:1: column \"item\" (feature \"item\") is not in the header");
  s = parser->BindHeader("click,user,item", "data/train.csv").status();
  EXPECT_EQ(Message(s), "data/train.csv:1: label column \"label\" is not in the header");
}

TEST(SampleParserTest, BadLinesAreRejectedAndLeaveTheBatchUnchanged) {
  auto parser = MakeParser(R"(
    feature { name: "user" }
    feature { name: "age" kind: NUMERIC }
    feature { name: "tags" kind: MULTI_VALUED separator: "|" }
  )");
  ASSERT_NE(parser, nullptr);
  ASSERT_TRUE(parser->BindHeader("label,user,age,tags", "x.csv").ok());
  Batch batch;
  parser->ResetBatch(&batch);
  ASSERT_TRUE(parser->Parse("1,u,30,a|b", &batch).ok());
  const Batch before = batch;

  absl::Status s = parser->Parse("1,u,30", &batch);
  EXPECT_EQ(Message(s), "expected 4 columns, got 3");
  s = parser->Parse("yes,u,30,a", &batch);
  EXPECT_EQ(Message(s), "label \"label\": expected a number, got \"yes\"");
  s = parser->Parse("1,u,thirty,a|b|c", &batch);
  EXPECT_EQ(Message(s), "column \"age\": expected a number, got \"thirty\"");
  s = parser->Parse(",u,30,a", &batch);
  EXPECT_EQ(Message(s), "label \"label\" is empty");
  s = parser->Parse("1,u,inf,a", &batch);
  EXPECT_FALSE(s.ok());
  s = parser->Parse("\x01\xff garbage", &batch);
  EXPECT_FALSE(s.ok());

  EXPECT_EQ(batch.size, before.size);
  EXPECT_EQ(batch.labels, before.labels);
  for (int f = 0; f < 3; ++f) {
    EXPECT_EQ(batch.fields[f].keys, before.fields[f].keys) << f;
    EXPECT_EQ(batch.fields[f].offsets, before.fields[f].offsets) << f;
    EXPECT_EQ(batch.fields[f].values, before.fields[f].values) << f;
  }
}

TEST(SampleParserTest, BucketizedUsesCriteoRuleAndFloor) {
  EXPECT_EQ(BucketOf(100, FeatureConfig::LOG2_SQUARED), 21);  // ln(100)^2 = 21.2
  EXPECT_EQ(BucketOf(3, FeatureConfig::LOG2_SQUARED), 1);     // ln(3)^2 = 1.207
  EXPECT_EQ(BucketOf(2, FeatureConfig::LOG2_SQUARED), 2);
  EXPECT_EQ(BucketOf(-1, FeatureConfig::LOG2_SQUARED), -1);
  EXPECT_EQ(BucketOf(0.5, FeatureConfig::LOG2_SQUARED), 0);
  EXPECT_EQ(BucketOf(3.7, FeatureConfig::FLOOR), 3);
  EXPECT_EQ(BucketOf(-0.5, FeatureConfig::FLOOR), -1);

  auto parser = MakeParser(R"(
    feature { name: "n" kind: BUCKETIZED }
    feature { name: "f" kind: BUCKETIZED bucketing: FLOOR }
  )");
  ASSERT_NE(parser, nullptr);
  ASSERT_TRUE(parser->BindHeader("label,n,f", "x.csv").ok());
  Batch batch;
  parser->ResetBatch(&batch);
  ASSERT_TRUE(parser->Parse("0,100,3.7", &batch).ok());
  ASSERT_TRUE(parser->Parse("0,,", &batch).ok());
  ASSERT_TRUE(parser->Parse("0,1.0,-2", &batch).ok());
  EXPECT_EQ(batch.fields[0].keys,
            (std::vector<uint64_t>{Key("n", "21"), MissingKey(HashBytes("n")), Key("n", "1")}));
  EXPECT_EQ(batch.fields[1].keys,
            (std::vector<uint64_t>{Key("f", "3"), MissingKey(HashBytes("f")), Key("f", "-2")}));
  EXPECT_EQ(Message(parser->Parse("0,x,1", &batch)), "column \"n\": expected a number, got \"x\"");
}

TEST(SampleParserTest, SequenceKeepsTheLastMaxLenItems) {
  auto parser = MakeParser(R"(
    feature { name: "seq" kind: SEQUENCE max_len: 3 }
    feature { name: "tags" kind: MULTI_VALUED separator: " " max_len: 10 }
  )");
  ASSERT_NE(parser, nullptr);
  ASSERT_TRUE(parser->BindHeader("label,seq,tags", "x.csv").ok());
  Batch batch;
  parser->ResetBatch(&batch);
  ASSERT_TRUE(parser->Parse("1,1^2^3^4^5,a b", &batch).ok());
  ASSERT_TRUE(parser->Parse("0,,", &batch).ok());
  ASSERT_TRUE(parser->Parse("0,x^^y^,  c  ", &batch).ok());
  const FieldBatch& seq = batch.fields[0];
  EXPECT_EQ(seq.offsets, (std::vector<int32_t>{0, 3, 3, 5}));
  EXPECT_EQ(seq.keys, (std::vector<uint64_t>{Key("seq", "3"), Key("seq", "4"), Key("seq", "5"),
                                             Key("seq", "x"), Key("seq", "y")}));
  EXPECT_EQ(batch.fields[1].offsets, (std::vector<int32_t>{0, 2, 2, 3}));
}

TEST(SampleParserTest, MultiTaskLabels) {
  auto parser = MakeParser("label: \"click, buy\" feature { name: \"u\" }");
  ASSERT_NE(parser, nullptr);
  ASSERT_TRUE(parser->BindHeader("u,buy,click", "x.csv").ok());
  EXPECT_EQ(parser->num_labels(), 2);
  Batch batch;
  parser->ResetBatch(&batch);
  ASSERT_TRUE(parser->Parse("a,0,1", &batch).ok());
  ASSERT_TRUE(parser->Parse("a,1,1", &batch).ok());
  EXPECT_EQ(batch.labels, (std::vector<float>{1, 0, 1, 1}));
  EXPECT_EQ(batch.label(1, 1), 1);
}

DataConfig CriteoConfig(DataConfig::Format format) {
  DataConfig data;
  data.set_format(format);
  for (int i = 1; i <= 13; ++i) {
    FeatureConfig* f = data.add_feature();
    f->set_name(absl::StrCat("I", i));
    f->set_kind(FeatureConfig::BUCKETIZED);
  }
  for (int i = 1; i <= 26; ++i) data.add_feature()->set_name(absl::StrCat("C", i));
  return data;
}

TEST(SampleParserTest, CriteoTsvByColumnNames) {
  auto parser = SampleParser::Create(CriteoConfig(DataConfig::CRITEO_TSV));
  ASSERT_TRUE(parser.ok()) << parser.status();
  std::vector<std::string> cells = {"1", "5", "", "-1"};
  for (int i = 4; i <= 13; ++i) cells.push_back(absl::StrCat(i));
  for (int i = 1; i <= 26; ++i) cells.push_back(i == 20 ? "" : absl::StrCat("c", i));
  Batch batch;
  (*parser)->ResetBatch(&batch);
  ASSERT_TRUE((*parser)->Parse(absl::StrJoin(cells, "\t"), &batch).ok());
  EXPECT_EQ(batch.labels[0], 1);
  EXPECT_EQ(batch.fields[0].keys[0], Key("I1", "2"));  // ln(5)^2 = 2.59
  EXPECT_EQ(batch.fields[1].keys[0], MissingKey(HashBytes("I2")));
  EXPECT_EQ(batch.fields[2].keys[0], Key("I3", "-1"));
  EXPECT_EQ(batch.fields[13].keys[0], Key("C1", "c1"));
  EXPECT_EQ(batch.fields[13 + 19].keys[0], MissingKey(HashBytes("C20")));
  cells.pop_back();
  EXPECT_EQ(Message((*parser)->Parse(absl::StrJoin(cells, "\t"), &batch)),
            "expected 40 columns, got 39");
}

TEST(SampleParserTest, CriteoUnknownColumnIsRejected) {
  DataConfig data = CriteoConfig(DataConfig::CRITEO_TSV);
  data.add_feature()->set_name("I14");
  auto parser = SampleParser::Create(data);
  ASSERT_FALSE(parser.ok());
  EXPECT_EQ(Message(parser.status()),
            "feature \"I14\": column \"I14\" is not a CRITEO_TSV column (label, I1..I13, C1..C26)");
}

TEST(SampleParserTest, ConfigErrorsAreRejected) {
  EXPECT_FALSE(SampleParser::Create(ParseData("delimiter: \"::\" feature { name: \"a\" }")).ok());
  EXPECT_FALSE(
      SampleParser::Create(ParseData("feature { name: \"a\" kind: SEQUENCE separator: \"ab\" }"))
          .ok());
  EXPECT_FALSE(
      SampleParser::Create(ParseData("format: LIBSVM label: \"y\" feature { name: \"a\" }")).ok());
  EXPECT_FALSE(SampleParser::Create(ParseData("format: CSV")).ok());  // no features
  auto s =
      SampleParser::Create(ParseData("format: DIN_TEXT feature { name: \"x\" column_index: 7 }"));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(Message(s.status()),
            "DIN_TEXT: feature \"x\": column_index 7 is out of range (5 columns)");
}

TEST(SampleParserTest, CriteoSampleCsvParses) {
  const std::string path = SharedPath("samples/criteo_sample.csv");
  ASSERT_SHARED_FILE(path);
  auto parser = SampleParser::Create(CriteoConfig(DataConfig::CSV));
  ASSERT_TRUE(parser.ok()) << parser.status();
  std::vector<std::string> lines = ReadLines(path);
  ASSERT_EQ(lines.size(), 201u);
  ASSERT_TRUE((*parser)->BindHeader(lines[0], path).ok());
  lines.erase(lines.begin());
  Batch batch;
  (*parser)->ResetBatch(&batch);
  std::string error;
  EXPECT_EQ(ParseAll(parser->get(), lines, &batch, &error), 0) << error;
  EXPECT_EQ(batch.size, 200);
  // Row 1: I2 = 3 -> bucket 1 (ln 3 squared), I1 blank, C1 = 05db9164.
  EXPECT_EQ(batch.fields[0].keys[0], MissingKey(HashBytes("I1")));
  EXPECT_EQ(batch.fields[1].keys[0], Key("I2", "1"));
  EXPECT_EQ(batch.fields[13].keys[0], Key("C1", "05db9164"));
  int positives = 0;
  for (float l : batch.labels) positives += l == 1;
  EXPECT_GT(positives, 0);
}

TEST(SampleParserTest, AmazonDinSampleParses) {
  const std::string path = SharedPath("samples/amazon_din_sample.txt");
  ASSERT_SHARED_FILE(path);
  auto parser = MakeParser(R"(
    format: DIN_TEXT
    feature { name: "target_item" table: "item" }
    feature { name: "target_cate" table: "cate" }
    feature { name: "hist_items" kind: SEQUENCE table: "item" max_len: 10 }
    feature { name: "hist_cates" kind: SEQUENCE table: "cate" max_len: 10 }
  )");
  ASSERT_NE(parser, nullptr);
  std::vector<std::string> lines = ReadLines(path);
  ASSERT_EQ(lines.size(), 100u);
  Batch batch;
  parser->ResetBatch(&batch);
  std::string error;
  EXPECT_EQ(ParseAll(parser.get(), lines, &batch, &error), 0) << error;
  ASSERT_EQ(batch.size, 100);
  // Line 1: "3737 19450;288 196;18486;674;1".
  EXPECT_EQ(batch.labels[0], 1);
  EXPECT_EQ(batch.fields[0].keys[0], Key("item", "18486"));
  EXPECT_EQ(batch.fields[2].num_keys(0), 2);
  EXPECT_EQ(batch.fields[2].keys[1], Key("item", "19450"));
  EXPECT_EQ(Message(parser->Parse("1 2;3;4;5", &batch)), "expected 5 columns, got 4");
  EXPECT_EQ(Message(parser->Parse("1 2;3;4;5;click", &batch)),
            "label \"label\": expected a number, got \"click\"");
  for (int b = 0; b < batch.size; ++b) {
    EXPECT_LE(batch.fields[2].num_keys(b), 10);
    EXPECT_EQ(batch.fields[2].num_keys(b), batch.fields[3].num_keys(b)) << "line " << b + 1;
  }
}

TEST(SampleParserTest, TaobaoSequenceSampleParses) {
  const std::string path = SharedPath("samples/taobao_seq_sample.csv");
  ASSERT_SHARED_FILE(path);
  auto parser = MakeParser(R"(
    label: "clk"
    feature { name: "userid" }
    feature { name: "adgroup_id" table: "item" }
    feature { name: "price" kind: NUMERIC }
    feature { name: "pvalue_level" }
    feature { name: "click_sequence" kind: SEQUENCE table: "item" max_len: 4 }
  )");
  ASSERT_NE(parser, nullptr);
  std::vector<std::string> lines = ReadLines(path);
  ASSERT_EQ(lines.size(), 101u);
  ASSERT_TRUE(parser->BindHeader(lines[0], path).ok());
  lines.erase(lines.begin());
  Batch batch;
  parser->ResetBatch(&batch);
  std::string error;
  EXPECT_EQ(ParseAll(parser.get(), lines, &batch, &error), 0) << error;
  ASSERT_EQ(batch.size, 100);
  // Line 2: ...,3.9,...,170301^573514
  EXPECT_FLOAT_EQ(batch.fields[2].values[0], 3.9f);
  EXPECT_EQ(batch.fields[3].keys[0], MissingKey(HashBytes("pvalue_level")));
  EXPECT_EQ(batch.fields[4].keys[0], Key("item", "170301"));
  EXPECT_EQ(batch.fields[4].num_keys(0), 2);
  EXPECT_EQ(batch.fields[4].num_keys(5), 0);  // blank click_sequence
  // Line 4 has 6 items; the last 4 are kept.
  EXPECT_EQ(batch.fields[4].num_keys(2), 4);
  EXPECT_EQ(batch.fields[4].keys[batch.fields[4].offsets[2]], Key("item", "158525"));
}

TEST(SampleParserTest, LibsvmByPositionAndByIndex) {
  auto parser = MakeParser(R"(
    format: LIBSVM
    feature { name: "first" column_index: 0 }
    feature { name: "x7" column: "7" kind: NUMERIC }
    feature { name: "b7" column: "7" kind: BUCKETIZED bucketing: FLOOR }
  )");
  ASSERT_NE(parser, nullptr);
  Batch batch;
  parser->ResetBatch(&batch);
  ASSERT_TRUE(parser->Parse("1 3:1 7:2.5", &batch).ok());
  ASSERT_TRUE(parser->Parse("-1\t12:1", &batch).ok());
  EXPECT_EQ(batch.labels, (std::vector<float>{1, 0}));
  EXPECT_EQ(batch.fields[0].keys, (std::vector<uint64_t>{Key("first", "3"), Key("first", "12")}));
  EXPECT_EQ(batch.fields[1].values, (std::vector<float>{2.5f, 0.0f}));
  EXPECT_EQ(batch.fields[2].keys,
            (std::vector<uint64_t>{Key("b7", "2"), MissingKey(HashBytes("b7"))}));
  EXPECT_EQ(Message(parser->Parse("1 3:1 garbage", &batch)),
            "token 3 \"garbage\": expected idx:val");
  EXPECT_EQ(Message(parser->Parse("1 3:x", &batch)), "token 2 \"3:x\": expected idx:val");
  EXPECT_EQ(Message(parser->Parse("one 3:1", &batch)),
            "label \"label\": expected a number, got \"one\"");
  EXPECT_EQ(Message(parser->Parse("3:1", &batch)),
            "expected 1 leading column(s) (labels) before the features, got 0");
  EXPECT_EQ(batch.size, 2);
}

TEST(SampleParserTest, LibfmByField) {
  auto parser = MakeParser(R"(
    format: LIBFM
    feature { name: "user" column: "0" }
    feature { name: "ctx" column: "1" kind: MULTI_VALUED max_len: 2 }
    feature { name: "age" column: "2" kind: NUMERIC }
  )");
  ASSERT_NE(parser, nullptr);
  Batch batch;
  parser->ResetBatch(&batch);
  ASSERT_TRUE(parser->Parse("1 0:17:1 1:5:1 1:6:1 1:9:1 2:0:0.25", &batch).ok());
  ASSERT_TRUE(parser->Parse("0 1:5", &batch).ok());
  EXPECT_EQ(batch.fields[0].keys,
            (std::vector<uint64_t>{Key("user", "17"), MissingKey(HashBytes("user"))}));
  EXPECT_EQ(batch.fields[1].keys,
            (std::vector<uint64_t>{Key("ctx", "6"), Key("ctx", "9"), Key("ctx", "5")}));
  EXPECT_EQ(batch.fields[1].offsets, (std::vector<int32_t>{0, 2, 3}));
  EXPECT_EQ(batch.fields[2].values, (std::vector<float>{0.25f, 0.0f}));
  EXPECT_FALSE(parser->Parse("1 0:", &batch).ok());
  EXPECT_FALSE(parser->Parse("1 0:3:abc", &batch).ok());
  // A failure after some fields were filled rolls all of them back.
  EXPECT_EQ(Message(parser->Parse("1 2:0:0.5 1:4 0:", &batch)),
            "token 4 \"0:\": expected field:idx or field:idx:val");
  EXPECT_EQ(batch.size, 2);
  EXPECT_EQ(batch.fields[1].keys.size(), 3u);
  EXPECT_EQ(batch.fields[2].values.size(), 2u);
}

TEST(SampleParserTest, AliccpSampleParsesAsLibfmWithTwoLabels) {
  const std::string path = SharedPath("samples/aliccp_esmm_sample.txt");
  ASSERT_SHARED_FILE(path);
  auto parser = MakeParser(R"(
    format: LIBFM
    delimiter: ","
    label: "1,2"
    feature { name: "user_id" column: "101" }
    feature { name: "item_id" column: "205" }
    feature { name: "f210" column: "210" kind: MULTI_VALUED max_len: 50 }
    feature { name: "f150_14" column: "150_14" kind: MULTI_VALUED max_len: 1000 }
  )");
  ASSERT_NE(parser, nullptr);
  std::vector<std::string> lines = ReadLines(path);
  ASSERT_EQ(lines.size(), 10u);
  Batch batch;
  parser->ResetBatch(&batch);
  std::string error;
  EXPECT_EQ(ParseAll(parser.get(), lines, &batch, &error), 0) << error;
  ASSERT_EQ(batch.size, 10);
  EXPECT_EQ(batch.num_labels, 2);
  // Line 1: "1,1,1,..." and line 3: "3,1,0,...": click then conversion.
  EXPECT_EQ(batch.label(0, 0), 1);
  EXPECT_EQ(batch.label(0, 1), 1);
  EXPECT_EQ(batch.label(2, 0), 1);
  EXPECT_EQ(batch.label(2, 1), 0);
  EXPECT_EQ(batch.fields[2].keys[0], Key("f210", "1"));  // first token "210:1"
  EXPECT_GT(batch.fields[3].num_keys(0), 100);
}

TEST(SampleParserTest, FrappeTrainParses) {
  const std::string path = SharedPath("frappe_x1/train.csv");
  ASSERT_SHARED_FILE(path);
  auto parser = MakeParser(R"(
    feature { name: "user" } feature { name: "item" } feature { name: "daytime" }
    feature { name: "weekday" } feature { name: "isweekend" } feature { name: "homework" }
    feature { name: "cost" } feature { name: "weather" } feature { name: "country" }
    feature { name: "city" }
  )");
  ASSERT_NE(parser, nullptr);
  std::vector<std::string> lines = ReadLines(path);
  ASSERT_EQ(lines.size(), 202027u + 1);
  ASSERT_TRUE(parser->BindHeader(lines[0], path).ok());
  lines.erase(lines.begin());
  Batch batch;
  parser->ResetBatch(&batch);
  std::string error;
  EXPECT_EQ(ParseAll(parser.get(), lines, &batch, &error), 0) << error;
  EXPECT_EQ(batch.size, 202027);
}

std::vector<std::string> Cells(std::string_view record, char delim = ',', bool trim = true) {
  std::vector<std::string_view> out;
  std::string scratch;
  absl::Status s = SplitCsvRecord(record, delim, '"', trim, delim != '\t', &out, &scratch);
  EXPECT_TRUE(s.ok()) << s << " in " << record;
  return std::vector<std::string>(out.begin(), out.end());
}

using Strings = std::vector<std::string>;

TEST(CsvTest, QuotedFieldsPerRfc4180) {
  EXPECT_EQ(Cells("1,\"x, y\",3"), (Strings{"1", "x, y", "3"}));
  EXPECT_EQ(Cells("\"a \"\"b\"\" c\",d"), (Strings{"a \"b\" c", "d"}));
  EXPECT_EQ(Cells("\"line\nbreak\",\"crlf\r\ninside\""),
            (Strings{"line\nbreak", "crlf\r\ninside"}));
  EXPECT_EQ(Cells("\"\",,\"\"\"\""), (Strings{"", "", "\""}));
  EXPECT_EQ(Cells("a,"), (Strings{"a", ""}));
  EXPECT_EQ(Cells(""), (Strings{""}));
  // A quote inside an unquoted field is a character (pandas does the same).
  EXPECT_EQ(Cells("5'11\",x"), (Strings{"5'11\"", "x"}));
}

TEST(CsvTest, TrimmingDropsSpacesAroundButNotInsideQuotes) {
  EXPECT_EQ(Cells(" 39, State-gov , \" x \" ,<=50K "),
            (Strings{"39", "State-gov", " x ", "<=50K"}));
  EXPECT_EQ(Cells(" a , b ", ',', /*trim=*/false), (Strings{" a ", " b "}));
  // With a tab delimiter, tabs are delimiters and only spaces are trimmed.
  EXPECT_EQ(Cells("a \t\t b", '\t'), (Strings{"a", "", "b"}));
}

TEST(CsvTest, MalformedQuotingIsAnErrorNotAHang) {
  std::vector<std::string_view> out;
  std::string scratch;
  absl::Status s = SplitCsvRecord("1,\"open,3", ',', '"', true, true, &out, &scratch);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "column 2: unclosed quote");
  s = SplitCsvRecord("\"ab\"cd,e", ',', '"', true, true, &out, &scratch);
  EXPECT_EQ(s.message(), "column 1: \"cd\" after the closing quote");
  s = SplitCsvRecord("\"", ',', '"', true, true, &out, &scratch);
  EXPECT_EQ(s.message(), "column 1: unclosed quote");
}

TEST(CsvTest, ACorpusFileParsesToTheExpectedValues) {
  // BOM, spaces after commas in the header, CRLF, quoted delimiters, escaped
  // quotes, a quoted line break, trailing spaces, an unclosed quote and an
  // empty last line.
  const std::string dir = testing_util::NewTempDir();
  const std::string path = testing_util::WriteFile(dir + "/corpus.csv",
                                                   "\xEF\xBB\xBF"
                                                   "age, workclass, note, income\r\n"
                                                   "39, State-gov, \"plain\", <=50K\r\n"
                                                   "50, \"Self, emp\", \"say \"\"hi\"\"\", >50K\r\n"
                                                   "38, Private, \"two\nlines\", >50K  \r\n"
                                                   "53, ?, \"unclosed, <=50K\n"
                                                   "28, Private, x, >50K\n"
                                                   "\n");
  auto parser = MakeParser(R"(
    format: CSV
    label: "income"
    label_positive: ">50K"
    feature { name: "age" kind: NUMERIC }
    feature { name: "workclass" }
    feature { name: "note" }
  )");
  ASSERT_NE(parser, nullptr);
  auto lines = LineReader::Open(path, 16);
  ASSERT_TRUE(lines.ok());
  (*lines)->set_quote(parser->record_quote());
  std::string_view record;
  ASSERT_TRUE(*(*lines)->Next(&record));
  ASSERT_TRUE(parser->BindHeader(record, path).ok());
  Batch batch;
  parser->ResetBatch(&batch);
  std::vector<std::pair<int64_t, std::string>> bad;
  while (*(*lines)->Next(&record)) {
    if (record.empty()) continue;
    absl::Status st = parser->Parse(record, &batch);
    if (!st.ok()) bad.emplace_back((*lines)->record_first_line(), Message(st));
  }
  ASSERT_EQ(batch.size, 4);
  EXPECT_EQ(batch.labels, (std::vector<float>{0, 1, 1, 1}));
  EXPECT_EQ(batch.fields[0].values, (std::vector<float>{39, 50, 38, 28}));
  EXPECT_EQ(batch.fields[1].keys,
            (std::vector<uint64_t>{Key("workclass", "State-gov"), Key("workclass", "Self, emp"),
                                   Key("workclass", "Private"), Key("workclass", "Private")}));
  EXPECT_EQ(batch.fields[2].keys,
            (std::vector<uint64_t>{Key("note", "plain"), Key("note", "say \"hi\""),
                                   Key("note", "two\nlines"), Key("note", "x")}));
  ASSERT_EQ(bad.size(), 1u);
  EXPECT_EQ(bad[0].first, 6);
  EXPECT_EQ(bad[0].second, "column 3: unclosed quote");
}

TEST(SampleParserTest, StringLabelsThresholdsAndEmptyLabels) {
  auto strings = MakeParser(R"(
    label: "y" label_positive: "yes" label_positive: "Y"
    feature { name: "a" }
  )");
  ASSERT_NE(strings, nullptr);
  ASSERT_TRUE(strings->BindHeader("a,y", "f.csv").ok());
  Batch batch;
  strings->ResetBatch(&batch);
  for (const char* line : {"1,yes", "2,no", "3,Y", "4,0", "5, yes "}) {
    ASSERT_TRUE(strings->Parse(line, &batch).ok()) << line;
  }
  EXPECT_EQ(batch.labels, (std::vector<float>{1, 0, 1, 0, 1}));
  EXPECT_EQ(Message(strings->Parse("6,", &batch)), "label \"y\" is empty");

  auto threshold = MakeParser("label: \"rating\" label_threshold: 4 feature { name: \"a\" }");
  ASSERT_NE(threshold, nullptr);
  ASSERT_TRUE(threshold->BindHeader("a,rating", "f.csv").ok());
  threshold->ResetBatch(&batch);
  for (const char* line : {"1,5", "2,4", "3,3.5", "4,1"}) {
    ASSERT_TRUE(threshold->Parse(line, &batch).ok()) << line;
  }
  EXPECT_EQ(batch.labels, (std::vector<float>{1, 1, 0, 0}));
  EXPECT_FALSE(threshold->Parse("5,high", &batch).ok());

  EXPECT_FALSE(SampleParser::Create(
                   ParseData("label_positive: \"y\" label_threshold: 1 feature { name: \"a\" }"))
                   .ok());
}

TEST(SampleParserTest, MissingValuesNeverMakeABadLine) {
  auto parser = MakeParser(R"(
    feature { name: "c" }
    feature { name: "n" kind: NUMERIC missing_fill: -1 }
    feature { name: "m" kind: NUMERIC missing_embedding: true }
    feature { name: "b" kind: BUCKETIZED }
    feature { name: "own" missing_values: "unknown" }
  )");
  ASSERT_NE(parser, nullptr);
  ASSERT_TRUE(parser->BindHeader("label,c,n,m,b,own", "f.csv").ok());
  Batch batch;
  parser->ResetBatch(&batch);
  ASSERT_TRUE(parser->Parse("1,?,NA,nan,NULL,unknown", &batch).ok());
  ASSERT_TRUE(parser->Parse("0,x,2,3,4,?", &batch).ok());
  const uint64_t c = HashBytes("c"), n = HashBytes("n"), m = HashBytes("m"), b = HashBytes("b");
  EXPECT_EQ(batch.fields[0].keys, (std::vector<uint64_t>{MissingKey(c), Key("c", "x")}));
  EXPECT_EQ(batch.fields[1].keys, (std::vector<uint64_t>{MissingKey(n), MissingKey(n)}));
  EXPECT_EQ(batch.fields[1].values, (std::vector<float>{-1, 2}));
  EXPECT_EQ(batch.fields[2].keys, (std::vector<uint64_t>{NumericMissingKey(m), MissingKey(m)}));
  EXPECT_EQ(batch.fields[2].values, (std::vector<float>{1, 3}));
  EXPECT_EQ(batch.fields[3].keys[0], MissingKey(b));
  // A feature's own list replaces the default: "?" is a value there.
  EXPECT_EQ(batch.fields[4].keys,
            (std::vector<uint64_t>{MissingKey(HashBytes("own")), Key("own", "?")}));
  // Anything else that is not a number still is a bad line.
  EXPECT_EQ(Message(parser->Parse("1,x,abc,1,1,z", &batch)),
            "column \"n\": expected a number, got \"abc\"");
}

TEST(SampleParserTest, NumericScalingUsesTheTrainingStatistics) {
  const std::string dir = testing_util::NewTempDir();
  const std::string path = testing_util::WriteFile(
      dir + "/train.csv", "label,s,mm,l\n1,1,10,0\n0,2,20,?\n1,3,30,e\n1,?,40,1\n0,6,50,3\n");
  DataConfig data = ParseData(R"(
    feature { name: "s" kind: NUMERIC scaling: STANDARD }
    feature { name: "mm" kind: NUMERIC scaling: MIN_MAX }
    feature { name: "l" kind: NUMERIC scaling: STANDARD log_transform: true }
  )");
  // Without statistics a scaled feature cannot be parsed.
  EXPECT_EQ(SampleParser::Create(data).status().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(SampleParser::NeedsNumericStats(data));
  // Two workers' halves merge to the whole file's statistics.
  auto half = [&](int rank) {
    ReaderOptions options;
    options.files = {path};
    options.worker_rank = rank;
    options.num_workers = 2;
    options.max_bad_line_rate = 1;  // the "e" line below
    return GatherNumericMoments(data, options);
  };
  auto half0 = half(0);
  auto half1 = half(1);
  ASSERT_TRUE(half0.ok() && half1.ok()) << half0.status() << half1.status();
  std::vector<NumericMoments> all = *half0;
  MergeNumericMoments(&all, *half1);
  // "?" is missing, not a value; "e" makes line 4 bad, so none of its values count.
  EXPECT_EQ(all[0].count, 3);
  EXPECT_EQ(all[1].count, 4);
  EXPECT_EQ(all[2].count, 3);
  ASSERT_TRUE(SetNumericStats(all, &data).ok());
  EXPECT_DOUBLE_EQ(data.feature(0).stats().mean(), 3.0);
  EXPECT_DOUBLE_EQ(data.feature(0).stats().stddev(), std::sqrt(14.0 / 3));
  EXPECT_DOUBLE_EQ(data.feature(1).stats().min(), 10);
  EXPECT_DOUBLE_EQ(data.feature(1).stats().max(), 50);
  const double l_mean = (std::log1p(0) + std::log1p(1) + std::log1p(3)) / 3;
  EXPECT_NEAR(data.feature(2).stats().mean(), l_mean, 1e-6);  // values are floats

  auto parser = SampleParser::Create(data);
  ASSERT_TRUE(parser.ok()) << parser.status();
  ASSERT_TRUE((*parser)->BindHeader("label,s,mm,l", "f.csv").ok());
  Batch batch;
  (*parser)->ResetBatch(&batch);
  ASSERT_TRUE((*parser)->Parse("1,6,30,-3", &batch).ok());
  EXPECT_NEAR(batch.fields[0].values[0], 3 / std::sqrt(14.0 / 3), 1e-6);
  EXPECT_NEAR(batch.fields[1].values[0], 0.5, 1e-6);
  const NumericStats& ls = data.feature(2).stats();
  EXPECT_NEAR(batch.fields[2].values[0], (-std::log1p(3) - ls.mean()) / ls.stddev(), 1e-5);
  // Scaling a categorical feature is a config error.
  EXPECT_FALSE(SampleParser::Create(ParseData("feature { name: \"c\" scaling: STANDARD }")).ok());
}

}  // namespace
}  // namespace ctrps
