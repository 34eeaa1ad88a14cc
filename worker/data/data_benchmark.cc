// Throughput of the data path on ctr-datagen output (Criteo-shaped, 39
// features): line parsing, the whole reader (per file format and
// compression), and key de-duplication.
//
//   build-data/worker/data/data_benchmark [--benchmark_filter=...]
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "benchmark/benchmark.h"
#include "common/benchmark_main.h"
#include "glog/logging.h"
#include "worker/data/compress.h"
#include "worker/data/ctr_datagen.h"
#include "worker/data/key_dedup.h"
#include "worker/data/line_reader.h"
#include "worker/data/reader.h"
#include "worker/data/sample_parser.h"

namespace ctrps {
namespace {

constexpr int64_t kRows = 200000;

// Generated once per process, removed at exit.
const std::string& DataFile() {
  static const std::string* path = [] {
    auto* p = new std::string((std::filesystem::temp_directory_path() /
                               absl::StrCat("ctrps_data_bench_", getpid(), ".tsv"))
                                  .string());
    DatagenOptions options;
    options.rows = kRows;
    options.splits = {1};
    auto report = WriteCtrData(options, *p);
    CHECK(report.ok()) << report.status();
    std::atexit([] {
      std::filesystem::remove(DataFile());
      std::filesystem::remove(DataFile() + ".prob");
    });
    return p;
  }();
  return *path;
}

DataConfig CriteoData() {
  DataConfig data;
  data.set_format(DataConfig::CRITEO_TSV);
  for (int i = 1; i <= 13; ++i) {
    FeatureConfig* f = data.add_feature();
    f->set_name(absl::StrCat("I", i));
    f->set_kind(FeatureConfig::BUCKETIZED);
  }
  for (int i = 1; i <= 26; ++i) data.add_feature()->set_name(absl::StrCat("C", i));
  return data;
}

std::vector<std::string> Lines() {
  std::vector<std::string> lines;
  auto reader = LineReader::Open(DataFile());
  CHECK(reader.ok());
  std::string_view line;
  while (*(*reader)->Next(&line) && lines.size() < 50000) lines.emplace_back(line);
  return lines;
}

void BM_ParseCriteoLine(benchmark::State& state) {
  const std::vector<std::string> lines = Lines();
  auto parser = SampleParser::Create(CriteoData());
  CHECK(parser.ok());
  Batch batch;
  int64_t bytes = 0;
  size_t i = 0;
  for (auto _ : state) {
    if (batch.fields.empty() || batch.size == 4096) (*parser)->ResetBatch(&batch);
    const std::string& line = lines[i++ % lines.size()];
    benchmark::DoNotOptimize((*parser)->Parse(line, &batch));
    bytes += line.size();
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(bytes);
}
BENCHMARK(BM_ParseCriteoLine);

// Runs a reader over `path` in batches of 4096 to the end; returns the samples.
int64_t ReadAllSamples(const DataConfig& data, const std::string& path, int shuffle_buffer) {
  ReaderOptions options;
  options.files = {path};
  options.batch_size = 4096;
  options.shuffle_buffer = shuffle_buffer;
  Reader reader(data, options);
  CHECK(reader.Start().ok());
  Batch batch;
  int64_t samples = 0;
  while (true) {
    auto e = reader.Next(&batch, absl::Seconds(60));
    CHECK(e.ok()) << e.status();
    if (*e != ReadEvent::kBatch) return samples;
    samples += batch.size;
  }
}

// The whole reader: file reading, sharding, parsing, batching, the queue.
void BM_ReaderEndToEnd(benchmark::State& state) {
  const DataConfig data = CriteoData();
  const std::string& path = DataFile();
  int64_t samples = 0;
  for (auto _ : state) samples += ReadAllSamples(data, path, static_cast<int>(state.range(0)));
  state.SetItemsProcessed(samples);
  state.SetBytesProcessed(static_cast<int64_t>(std::filesystem::file_size(path)) *
                          state.iterations());
}
BENCHMARK(BM_ReaderEndToEnd)->Arg(0)->Arg(100000)->Unit(benchmark::kMillisecond)->UseRealTime();

// The same rows as CRITEO_TSV, CSV and fully quoted CSV, each plain, gzip
// (level 6) and zstd (level 3): the reader's rows/s per format.
// kCsvOldPath reads the kCsv file with quoting and trimming off: the parser
// as it was before either existed, for the fast path's cost.
enum Variant { kTsv, kCsv, kQuotedCsv, kCsvOldPath, kNumVariants };
enum Packing { kPlain, kGzip, kZstd };

const std::string& VariantFile(int variant, int packing) {
  static std::string* paths[kNumVariants][3] = {};
  std::string*& path = paths[variant][packing];
  if (path != nullptr) return *path;
  std::string text;
  if (variant != kTsv) {
    text = "label";
    for (int i = 1; i <= 13; ++i) absl::StrAppend(&text, ",I", i);
    for (int i = 1; i <= 26; ++i) absl::StrAppend(&text, ",C", i);
    text += "\n";
  }
  auto reader = LineReader::Open(DataFile());
  CHECK(reader.ok());
  std::string_view line;
  std::vector<std::string_view> cells;
  while (*(*reader)->Next(&line)) {
    if (variant == kTsv) {
      text.append(line).append("\n");
      continue;
    }
    SplitCells(line, '\t', &cells);
    for (size_t c = 0; c < cells.size(); ++c) {
      if (c > 0) text += ',';
      if (variant == kQuotedCsv && c >= 14) {
        text.append("\"").append(cells[c]).append("\"");
      } else {
        text.append(cells[c]);
      }
    }
    text += '\n';
  }
  const std::string bytes = packing == kGzip   ? GzipBytes(text)
                            : packing == kZstd ? ZstdBytes(text)
                                               : text;
  path = new std::string(absl::StrCat(DataFile(), ".", variant, ".", packing));
  std::ofstream(*path, std::ios::binary) << bytes;
  static bool registered = false;
  if (!registered) {
    registered = true;
    std::atexit([] {
      for (auto& row : paths) {
        for (std::string* p : row) {
          if (p != nullptr) std::filesystem::remove(*p);
        }
      }
    });
  }
  return *path;
}

void BM_ReaderFormat(benchmark::State& state) {
  const int variant = static_cast<int>(state.range(0));
  const int packing = static_cast<int>(state.range(1));
  DataConfig data = CriteoData();
  if (variant != kTsv) data.set_format(DataConfig::CSV);
  if (variant == kCsvOldPath) {
    data.set_quote("");
    data.set_trim_spaces(false);
  }
  const std::string& path = VariantFile(variant == kCsvOldPath ? kCsv : variant, packing);
  int64_t samples = 0;
  for (auto _ : state) samples += ReadAllSamples(data, path, /*shuffle_buffer=*/0);
  CHECK_EQ(samples, kRows * state.iterations());
  state.SetItemsProcessed(samples);
  const char* names[] = {"criteo_tsv", "csv", "quoted_csv", "csv_without_quoting_or_trim"};
  state.SetLabel(absl::StrCat(names[variant], packing == kPlain  ? ""
                                              : packing == kGzip ? ".gz"
                                                                 : ".zst"));
}
BENCHMARK(BM_ReaderFormat)
    ->ArgsProduct({{kTsv, kCsv, kQuotedCsv}, {kPlain, kGzip, kZstd}})
    ->Args({kCsvOldPath, kPlain})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_KeyDedupBatch(benchmark::State& state) {
  const DataConfig data = CriteoData();
  ReaderOptions options;
  options.files = {DataFile()};
  options.batch_size = static_cast<int>(state.range(0));
  Reader reader(data, options);
  CHECK(reader.Start().ok());
  Batch batch;
  CHECK(*reader.Next(&batch, absl::Seconds(60)) == ReadEvent::kBatch);
  reader.Stop();
  KeyDedup dedup(data);
  int64_t keys = 0;
  for (auto _ : state) {
    dedup.Run(batch);
    for (const FieldBatch& f : batch.fields) keys += f.keys.size();
  }
  state.SetItemsProcessed(keys);
}
BENCHMARK(BM_KeyDedupBatch)->Arg(4096)->Arg(65536);

void BM_SumGradients(benchmark::State& state) {
  const DataConfig data = CriteoData();
  ReaderOptions options;
  options.files = {DataFile()};
  options.batch_size = 4096;
  Reader reader(data, options);
  CHECK(reader.Start().ok());
  Batch batch;
  CHECK(*reader.Next(&batch, absl::Seconds(60)) == ReadEvent::kBatch);
  reader.Stop();
  KeyDedup dedup(data);
  dedup.Run(batch);
  const int dim = static_cast<int>(state.range(0));
  const TableKeys& t = dedup.tables()[13];  // C1
  std::vector<float> occ(t.index.size() * dim, 1.0f), out(t.unique_keys.size() * dim);
  for (auto _ : state) {
    SumGradients(t, occ.data(), dim, out.data());
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * t.index.size());
}
BENCHMARK(BM_SumGradients)->Arg(16)->Arg(64);

}  // namespace
}  // namespace ctrps

CTRPS_BENCHMARK_MAIN();
