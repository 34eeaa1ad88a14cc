#include "worker/data/reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/config.h"
#include "gtest/gtest.h"
#include "worker/data/compress.h"
#include "worker/data/data_test_util.h"

namespace ctrps {
namespace {

using testing_util::NewTempDir;
using testing_util::ParseData;
using testing_util::SharedPath;
using testing_util::WriteFile;

constexpr absl::Duration kTimeout = absl::Seconds(10);

// Samples carry their id in a NUMERIC feature, so a test can see which lines
// arrived and in which order.
const char kIdConfig[] = R"(
  format: CSV
  feature { name: "id" kind: NUMERIC }
  feature { name: "tag" }
)";

// One event of a reader run: a batch's ids and position, or an epoch/data end.
struct Event {
  ReadEvent event;
  std::vector<int> ids;
  ReadPosition position;
  bool operator==(const Event& o) const {
    return event == o.event && ids == o.ids && position == o.position;
  }
};

std::ostream& operator<<(std::ostream& os, const Event& e) {
  os << (e.event == ReadEvent::kBatch        ? "batch"
         : e.event == ReadEvent::kEndOfEpoch ? "epoch"
                                             : "end");
  if (e.event == ReadEvent::kBatch) {
    os << "[";
    for (int id : e.ids) os << id << " ";
    os << "] @" << e.position.epoch << "/" << e.position.file << ":" << e.position.line << "+"
       << e.position.skip;
  }
  return os;
}

// Writes a CSV with `n` samples, ids first_id..first_id+n-1.
std::string WriteIdCsv(const std::string& path, int first_id, int n) {
  std::string text = "label,tag,id\n";
  for (int i = 0; i < n; ++i) {
    absl::StrAppend(&text, (first_id + i) % 2, ",t", (first_id + i) % 5, ",", first_id + i, "\n");
  }
  return WriteFile(path, text);
}

// Reads everything; stops at kEndOfData or an error (returned in *status).
std::vector<Event> ReadAll(const DataConfig& data, const ReaderOptions& options,
                           absl::Status* status = nullptr) {
  Reader reader(data, options);
  std::vector<Event> events;
  absl::Status s = reader.Start();
  Batch batch;
  while (s.ok()) {
    absl::StatusOr<ReadEvent> e = reader.Next(&batch, kTimeout);
    if (!e.ok()) {
      s = e.status();
      break;
    }
    Event event{*e, {}, {}};
    if (*e == ReadEvent::kBatch) {
      EXPECT_EQ(batch.size, static_cast<int>(batch.fields[0].values.size()));
      for (float v : batch.fields[0].values) event.ids.push_back(static_cast<int>(v));
      event.position = batch.position;
    }
    events.push_back(event);
    if (*e == ReadEvent::kEndOfData) break;
  }
  if (status != nullptr) {
    *status = s;
  } else {
    EXPECT_TRUE(s.ok()) << s;
  }
  return events;
}

std::vector<int> AllIds(const std::vector<Event>& events) {
  std::vector<int> ids;
  for (const Event& e : events) ids.insert(ids.end(), e.ids.begin(), e.ids.end());
  return ids;
}

std::vector<int> Range(int begin, int end) {
  std::vector<int> v;
  for (int i = begin; i < end; ++i) v.push_back(i);
  return v;
}

TEST(ReaderTest, ReadsLinesInOrderIntoBatchesAndSignalsEpochs) {
  const std::string dir = NewTempDir();
  ReaderOptions options;
  options.files = {WriteIdCsv(dir + "/a.csv", 0, 10)};
  options.batch_size = 4;
  options.epochs = 2;
  std::vector<Event> events = ReadAll(ParseData(kIdConfig), options);
  ASSERT_EQ(events.size(), 9u);
  EXPECT_EQ(events[0].ids, Range(0, 4));
  EXPECT_EQ(events[1].ids, Range(4, 8));
  EXPECT_EQ(events[2].ids, Range(8, 10));
  EXPECT_EQ(events[3].event, ReadEvent::kEndOfEpoch);
  EXPECT_EQ(events[4].ids, Range(0, 4));
  EXPECT_EQ(events[7].event, ReadEvent::kEndOfEpoch);
  EXPECT_EQ(events[8].event, ReadEvent::kEndOfData);
  EXPECT_EQ(events[0].position, (ReadPosition{0, 0, 5, 0}));  // header + 4 lines
  EXPECT_EQ(events[2].position, (ReadPosition{0, 1, 0, 0}));  // past the last file
}

TEST(ReaderTest, EndOfDataRepeatsAndBatchesCarryLabels) {
  const std::string dir = NewTempDir();
  ReaderOptions options;
  options.files = {WriteIdCsv(dir + "/a.csv", 0, 3)};
  Reader reader(ParseData(kIdConfig), options);
  ASSERT_TRUE(reader.Start().ok());
  Batch batch;
  ASSERT_EQ(*reader.Next(&batch, kTimeout), ReadEvent::kBatch);
  EXPECT_EQ(batch.labels, (std::vector<float>{0, 1, 0}));
  EXPECT_EQ(*reader.Next(&batch, kTimeout), ReadEvent::kEndOfEpoch);
  EXPECT_EQ(*reader.Next(&batch, kTimeout), ReadEvent::kEndOfData);
  EXPECT_EQ(*reader.Next(&batch, kTimeout), ReadEvent::kEndOfData);
  EXPECT_EQ(reader.stats().samples, 3);
  reader.Stop();
  EXPECT_EQ(reader.Next(&batch, kTimeout).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(ReaderTest, NextBeforeStartAndStartTwiceAreRejected) {
  const std::string dir = NewTempDir();
  ReaderOptions options;
  options.files = {WriteIdCsv(dir + "/a.csv", 0, 3)};
  Reader reader(ParseData(kIdConfig), options);
  Batch batch;
  EXPECT_EQ(reader.Next(&batch, kTimeout).status().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(reader.Start().ok());
  EXPECT_EQ(reader.Start().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(ReaderTest, WorkersSeeDisjointLinesCoveringEverything) {
  const std::string dir = NewTempDir();
  std::vector<std::string> files = {
      WriteIdCsv(dir + "/a.csv", 0, 11), WriteIdCsv(dir + "/b.csv", 11, 1),
      WriteIdCsv(dir + "/c.csv", 12, 1), WriteIdCsv(dir + "/d.csv", 13, 8)};
  for (int workers : {1, 2, 3}) {
    std::multiset<int> seen;
    for (int rank = 0; rank < workers; ++rank) {
      ReaderOptions options;
      options.files = files;
      options.batch_size = 3;
      options.worker_rank = rank;
      options.num_workers = workers;
      std::vector<int> ids = AllIds(ReadAll(ParseData(kIdConfig), options));
      EXPECT_NEAR(static_cast<double>(ids.size()), 21.0 / workers, 2.0) << rank << "/" << workers;
      seen.insert(ids.begin(), ids.end());
    }
    const std::vector<int> all(seen.begin(), seen.end());
    EXPECT_EQ(all, Range(0, 21)) << workers << " workers";  // no id twice, none missing
  }
}

TEST(ReaderTest, ShuffleIsAPermutationAndDeterministicPerSeed) {
  const std::string dir = NewTempDir();
  ReaderOptions options;
  options.files = {WriteIdCsv(dir + "/a.csv", 0, 50), WriteIdCsv(dir + "/b.csv", 50, 30)};
  options.batch_size = 8;
  options.shuffle_buffer = 16;
  options.epochs = 2;
  options.seed = 5;
  const DataConfig data = ParseData(kIdConfig);
  std::vector<Event> a = ReadAll(data, options);
  std::vector<Event> b = ReadAll(data, options);
  EXPECT_EQ(a, b);
  std::vector<int> ids = AllIds(a);
  ASSERT_EQ(ids.size(), 160u);
  std::vector<int> epoch0(ids.begin(), ids.begin() + 80), epoch1(ids.begin() + 80, ids.end());
  EXPECT_NE(epoch0, Range(0, 80));
  EXPECT_NE(epoch0, epoch1);  // each epoch is shuffled differently
  std::sort(epoch0.begin(), epoch0.end());
  std::sort(epoch1.begin(), epoch1.end());
  EXPECT_EQ(epoch0, Range(0, 80));
  EXPECT_EQ(epoch1, Range(0, 80));
  options.seed = 6;
  EXPECT_NE(AllIds(ReadAll(data, options)), AllIds(a));
}

TEST(ReaderTest, ShuffleAcrossCsvFilesWithDifferentColumnOrders) {
  const std::string dir = NewTempDir();
  std::string b = "id,label,tag\n";
  for (int i = 10; i < 20; ++i) absl::StrAppend(&b, i, ",", i % 2, ",t\n");
  ReaderOptions options;
  options.files = {WriteIdCsv(dir + "/a.csv", 0, 10), WriteFile(dir + "/b.csv", b)};
  options.batch_size = 20;
  options.shuffle_buffer = 20;
  options.max_bad_line_rate = 0;
  std::vector<int> ids = AllIds(ReadAll(ParseData(kIdConfig), options));
  ASSERT_EQ(ids.size(), 20u);
  EXPECT_NE(ids, Range(0, 20));
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids, Range(0, 20));
}

// Resuming from each batch's position must give exactly the rest of the run.
void ExpectExactResume(const ReaderOptions& options) {
  const DataConfig data = ParseData(kIdConfig);
  const std::vector<Event> full = ReadAll(data, options);
  ASSERT_GT(full.size(), 3u);
  for (size_t k = 0; k < full.size(); ++k) {
    if (full[k].event != ReadEvent::kBatch) continue;
    ReaderOptions resumed = options;
    resumed.start = full[k].position;
    const std::vector<Event> rest = ReadAll(data, resumed);
    const std::vector<Event> expected(full.begin() + k + 1, full.end());
    ASSERT_EQ(rest, expected) << "resuming after event " << k << " " << full[k];
  }
}

TEST(ReaderTest, ResumeFromAPositionYieldsExactlyTheRemainingLines) {
  const std::string dir = NewTempDir();
  ReaderOptions options;
  options.files = {WriteIdCsv(dir + "/a.csv", 0, 13), WriteIdCsv(dir + "/b.csv", 13, 4),
                   WriteIdCsv(dir + "/c.csv", 17, 9)};
  options.batch_size = 4;
  options.epochs = 2;
  ExpectExactResume(options);
  options.num_workers = 2;
  options.worker_rank = 1;
  ExpectExactResume(options);
}

TEST(ReaderTest, ResumeWithShuffleYieldsExactlyTheRemainingSamples) {
  const std::string dir = NewTempDir();
  ReaderOptions options;
  options.files = {WriteIdCsv(dir + "/a.csv", 0, 23), WriteIdCsv(dir + "/b.csv", 23, 10)};
  options.batch_size = 5;
  options.shuffle_buffer = 7;
  options.epochs = 2;
  ExpectExactResume(options);
  options.num_workers = 3;
  options.worker_rank = 2;
  ExpectExactResume(options);
}

TEST(ReaderTest, BadLinesAreSkippedCountedAndReported) {
  const std::string dir = NewTempDir();
  const std::string path = WriteFile(dir + "/bad.csv",
                                     "label,tag,id\n"
                                     "0,a,1\n"
                                     "1,b\n"       // line 3: too few columns
                                     "x,c,3\n"     // line 4: label
                                     "\n"          // empty: ignored
                                     "1,d,four\n"  // line 6: numeric
                                     "0,e,5\n");
  ReaderOptions options;
  options.files = {path};
  options.max_bad_line_rate = 0.9;
  options.report_bad_lines = 2;
  Reader reader(ParseData(kIdConfig), options);
  ASSERT_TRUE(reader.Start().ok());
  Batch batch;
  ASSERT_EQ(*reader.Next(&batch, kTimeout), ReadEvent::kBatch);
  EXPECT_EQ(batch.fields[0].values, (std::vector<float>{1, 5}));
  ASSERT_EQ(*reader.Next(&batch, kTimeout), ReadEvent::kEndOfEpoch);
  const ReaderStats stats = reader.stats();
  EXPECT_EQ(stats.lines, 5);
  EXPECT_EQ(stats.samples, 2);
  EXPECT_EQ(stats.bad_lines, 3);
  EXPECT_EQ(stats.bad_line_reports,
            (std::vector<std::string>{path + ":3: expected 3 columns, got 2",
                                      path + ":4: label \"label\": expected a number, got \"x\""}));

  // Shuffled, the same lines are reported (in shuffled order).
  options.shuffle_buffer = 100;
  options.report_bad_lines = 5;
  Reader shuffled(ParseData(kIdConfig), options);
  ASSERT_TRUE(shuffled.Start().ok());
  ASSERT_EQ(*shuffled.Next(&batch, kTimeout), ReadEvent::kBatch);
  EXPECT_EQ(batch.size, 2);
  ASSERT_EQ(*shuffled.Next(&batch, kTimeout), ReadEvent::kEndOfEpoch);
  std::vector<std::string> reports = shuffled.stats().bad_line_reports;
  std::sort(reports.begin(), reports.end());
  ASSERT_EQ(reports.size(), 3u);
  EXPECT_EQ(reports[2], path + ":6: column \"id\": expected a number, got \"four\"");
}

TEST(ReaderTest, BadLineRateAboveTheLimitFailsTheReader) {
  const std::string dir = NewTempDir();
  std::string text = "label,tag,id\n";
  for (int i = 0; i < 5000; ++i) {
    absl::StrAppend(&text, i % 100 == 50 ? "garbage" : absl::StrCat("0,t,", i), "\n");
  }
  const std::string path = WriteFile(dir + "/noisy.csv", text);
  ReaderOptions options;
  options.files = {path};
  options.batch_size = 100;
  options.queue_depth = 100;          // let the reader run ahead to the failure
  options.max_bad_line_rate = 0.005;  // 1% are bad
  absl::Status status;
  std::vector<Event> events = ReadAll(ParseData(kIdConfig), options, &status);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), path +
                                  ": 10 of 1000 lines read are malformed (1%), more than "
                                  "data.max_bad_line_rate 0.005; first: " +
                                  path + ":52: expected 3 columns, got 1");
  EXPECT_LE(events.size(), 10u);  // it stopped after about 1000 lines
  // Under the limit the same file reads to the end.
  options.max_bad_line_rate = 0.02;
  events = ReadAll(ParseData(kIdConfig), options, &status);
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(AllIds(events).size(), 4950u);
}

TEST(ReaderTest, BadLineRateIsCheckedAtTheEndOfSmallFiles) {
  const std::string dir = NewTempDir();
  ReaderOptions options;
  options.files = {WriteFile(dir + "/small.csv", "label,tag,id\n0,a,1\n0,b,2\n0,c\n")};
  absl::Status status;
  ReadAll(ParseData(kIdConfig), options, &status);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("1 of 3 lines read are malformed"), std::string::npos) << status;
}

TEST(ReaderTest, MissingFileFailsAtStart) {
  const std::string dir = NewTempDir();
  ReaderOptions options;
  options.files = {WriteIdCsv(dir + "/a.csv", 0, 3), dir + "/missing.csv"};
  Reader reader(ParseData(kIdConfig), options);
  absl::Status s = reader.Start();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(s.message(), dir + "/missing.csv: no such file");
}

TEST(ReaderTest, MissingColumnFailsAtStart) {
  const std::string dir = NewTempDir();
  ReaderOptions options;
  options.files = {WriteIdCsv(dir + "/a.csv", 0, 3), WriteFile(dir + "/b.csv", "label,id\n0,1\n")};
  Reader reader(ParseData(kIdConfig), options);
  absl::Status s = reader.Start();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), dir + "/b.csv:1: column \"tag\" (feature \"tag\") is not in the header");
}

TEST(ReaderTest, BadOptionsFailAtStart) {
  const std::string dir = NewTempDir();
  ReaderOptions options;
  options.files = {WriteIdCsv(dir + "/a.csv", 0, 3)};
  options.worker_rank = 2;
  options.num_workers = 2;
  EXPECT_EQ(Reader(ParseData(kIdConfig), options).Start().code(),
            absl::StatusCode::kInvalidArgument);
  options.worker_rank = 0;
  options.start.skip = 3;  // a skip needs a shuffle buffer
  EXPECT_EQ(Reader(ParseData(kIdConfig), options).Start().code(),
            absl::StatusCode::kInvalidArgument);
  options.start = ReadPosition{0, 0, 99, 0};  // past the end of the file
  absl::Status status;
  ReadAll(ParseData(kIdConfig), options, &status);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
}

TEST(ReaderTest, NextTimesOutWhileTheReaderWaitsForData) {
  const std::string dir = NewTempDir();
  const std::string fifo = dir + "/pipe.tsv";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  // Holding both ends keeps the reader's open() and read() from returning EOF.
  const int fd = open(fifo.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  DataConfig data = ParseData("format: CRITEO_TSV feature { name: \"C1\" }");
  ReaderOptions options;
  options.files = {fifo};
  options.batch_size = 2;
  Reader reader(data, options);
  ASSERT_TRUE(reader.Start().ok());
  Batch batch;
  absl::StatusOr<ReadEvent> e = reader.Next(&batch, absl::Milliseconds(50));
  EXPECT_EQ(e.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_NE(e.status().message().find("no batch within 50ms"), std::string::npos) << e.status();
  std::string line = "1";
  for (int i = 1; i < 40; ++i) line += i == 14 ? "\tabc" : "\t";
  line += "\n";
  const std::string two = line + line;
  ASSERT_EQ(write(fd, two.data(), two.size()), static_cast<ssize_t>(two.size()));
  close(fd);
  e = reader.Next(&batch, kTimeout);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(*e, ReadEvent::kBatch);
  EXPECT_EQ(batch.size, 2);
}

TEST(ReaderTest, StopWhileTheQueueIsFullReturnsPromptly) {
  const std::string dir = NewTempDir();
  ReaderOptions options;
  options.files = {WriteIdCsv(dir + "/a.csv", 0, 5000)};
  options.batch_size = 10;
  options.queue_depth = 2;
  options.epochs = 100;
  Reader reader(ParseData(kIdConfig), options);
  ASSERT_TRUE(reader.Start().ok());
  Batch batch;
  ASSERT_EQ(*reader.Next(&batch, kTimeout), ReadEvent::kBatch);
  const absl::Time start = absl::Now();
  reader.Stop();
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
}

TEST(ReaderTest, ReadsTheSharedSamples) {
  const std::string criteo = SharedPath("samples/criteo_sample.csv");
  const std::string din = SharedPath("samples/amazon_din_sample.txt");
  ASSERT_SHARED_FILE(criteo);
  ASSERT_SHARED_FILE(din);
  DataConfig data =
      ParseData("format: CSV feature { name: \"C1\" } feature { name: \"I5\" kind: NUMERIC }");
  ReaderOptions options;
  options.files = {criteo};
  options.batch_size = 64;
  options.max_bad_line_rate = 0;
  Reader reader(data, options);
  ASSERT_TRUE(reader.Start().ok());
  Batch batch;
  int samples = 0;
  while (*reader.Next(&batch, kTimeout) == ReadEvent::kBatch) samples += batch.size;
  EXPECT_EQ(samples, 200);
  EXPECT_EQ(reader.stats().bad_lines, 0);

  DataConfig din_data = ParseData(R"(
    format: DIN_TEXT
    feature { name: "target_item" table: "item" }
    feature { name: "hist_items" kind: SEQUENCE table: "item" }
  )");
  options.files = {din};
  Reader din_reader(din_data, options);
  ASSERT_TRUE(din_reader.Start().ok());
  samples = 0;
  while (*din_reader.Next(&batch, kTimeout) == ReadEvent::kBatch) samples += batch.size;
  EXPECT_EQ(samples, 100);
}

TEST(ReaderTest, FrappeSplitsReadCompletely) {
  const std::string path = SharedPath("frappe_x1/valid.csv");
  ASSERT_SHARED_FILE(path);
  auto config = ParseExperimentConfig(R"(
    table { name: "user" dim: 4 } table { name: "item" dim: 4 }
    data { dir: ")" + SharedPath("frappe_x1") +
                                          R"(" train: "train.csv" valid: "valid.csv"
           feature { name: "user" } feature { name: "item" } }
    train { batch_size: 4096 }
  )",
                                      "frappe.pbtxt");
  ASSERT_TRUE(config.ok()) << config.status();
  auto options = MakeReaderOptions(*config, Split::kValid, 1, 2);
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->files, std::vector<std::string>{path});
  EXPECT_EQ(options->epochs, 1);
  Reader reader(config->data(), *options);
  ASSERT_TRUE(reader.Start().ok());
  Batch batch;
  int samples = 0;
  while (*reader.Next(&batch, kTimeout) == ReadEvent::kBatch) samples += batch.size;
  EXPECT_EQ(samples, 57722 / 2);
  EXPECT_FALSE(MakeReaderOptions(*config, Split::kTest, 0, 1).ok());  // no test files
}

TEST(ReaderTest, GlobsDirectoriesAndCompressedPartsReadAsOneDataSet) {
  const std::string dir = NewTempDir();
  std::filesystem::create_directories(dir + "/parts");
  const std::string plain = WriteIdCsv(dir + "/plain.csv", 0, 7);
  std::string text;
  {
    std::ifstream in(WriteIdCsv(dir + "/tmp.csv", 7, 6));
    text.assign(std::istreambuf_iterator<char>(in), {});
  }
  WriteFile(dir + "/parts/part-1.csv.gz", GzipBytes(text));
  {
    std::ifstream in(WriteIdCsv(dir + "/tmp.csv", 13, 5));
    text.assign(std::istreambuf_iterator<char>(in), {});
  }
  WriteFile(dir + "/parts/part-2.csv.zst", ZstdBytes(text));
  WriteFile(dir + "/parts/.hidden", "ignored");

  ExperimentConfig config;
  *config.mutable_data() = ParseData(kIdConfig);
  config.mutable_data()->set_dir(dir);
  config.mutable_data()->add_train("plain.*");
  config.mutable_data()->add_train("parts");
  config.mutable_train()->set_batch_size(4);
  std::vector<int> ids;
  for (int w = 0; w < 2; ++w) {
    auto options = MakeReaderOptions(config, Split::kTrain, w, 2);
    ASSERT_TRUE(options.ok()) << options.status();
    ASSERT_EQ(options->files.size(), 3u);
    EXPECT_EQ(options->files[1], dir + "/parts/part-1.csv.gz");
    const std::vector<int> mine = AllIds(ReadAll(config.data(), *options));
    ids.insert(ids.end(), mine.begin(), mine.end());
  }
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids, Range(0, 18));

  config.mutable_data()->add_train("nothing-*.csv");
  auto missing = MakeReaderOptions(config, Split::kTrain, 0, 1);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("\"nothing-*.csv\" matches no file"), std::string::npos)
      << missing.status();
}

TEST(ReaderTest, QuotedLineBreaksKeepLineNumbersAndSharding) {
  const std::string dir = NewTempDir();
  ReaderOptions options;
  options.files = {WriteFile(
      dir + "/q.csv", "label,tag,id\n1,\"a\nb\",0\n0,x,1\n1,\"c\",2\n0,\"unclosed,3\n1,y,4\n")};
  options.report_bad_lines = 5;
  options.max_bad_line_rate = 0.5;
  std::vector<int> ids;
  std::vector<std::string> reports;
  for (int w = 0; w < 2; ++w) {
    options.worker_rank = w;
    options.num_workers = 2;
    Reader reader(ParseData(kIdConfig), options);
    ASSERT_TRUE(reader.Start().ok());
    Batch batch;
    while (true) {
      auto e = reader.Next(&batch, kTimeout);
      ASSERT_TRUE(e.ok()) << e.status();
      if (*e == ReadEvent::kEndOfData) break;
      if (*e == ReadEvent::kBatch) {
        for (float v : batch.fields[0].values) ids.push_back(static_cast<int>(v));
      }
    }
    for (const std::string& r : reader.stats().bad_line_reports) reports.push_back(r);
  }
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids, (std::vector<int>{0, 1, 2, 4}));
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0], dir + "/q.csv:6: column 2: unclosed quote");
}

}  // namespace
}  // namespace ctrps
