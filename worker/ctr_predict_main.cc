// ctr-predict: scores a data file with an export (worker/predictor.h).
//   ctr-predict runs/frappe/export --input test.csv --output scores.txt --threads 2
// One probability per data line, in input order.
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/flags_util.h"
#include "gflags/gflags.h"
#include "worker/data/line_reader.h"
#include "worker/data/sample_parser.h"
#include "worker/predictor.h"

extern "C" void openblas_set_num_threads(int);

DEFINE_string(input, "", "data file in the exported config's data.format (CSV: with its header)");
DEFINE_string(output, "", "file for the scores: one probability (%.8g) per data line");
DEFINE_int32(threads, 1, "scoring threads");
DEFINE_int32(batch_size, 1024, "lines scored together by one thread");
DEFINE_int32(report_bad_lines, 20, "malformed lines reported one by one (the rest are counted)");

namespace ctrps {
namespace {

int Fail(const std::string& message) {
  std::fprintf(stderr, "ctr-predict: %s\n", message.c_str());
  return 1;
}

// Up to batch_size consecutive lines, their scores and what was wrong.
struct Chunk {
  std::string text;  // the lines back to back
  std::vector<size_t> ends;
  std::vector<int64_t> line_numbers;  // first physical line of each record
  std::vector<float> scores;
  std::vector<std::string> bad;  // "file:line: what", in order
  absl::Status status;
  Batch batch;
  std::vector<int> rows;  // line index of each batch sample
  std::vector<float> probs;

  void Clear() {
    text.clear();
    ends.clear();
    line_numbers.clear();
    bad.clear();
  }
  std::string_view line(size_t i) const {
    const size_t begin = i == 0 ? 0 : ends[i - 1];
    return std::string_view(text).substr(begin, ends[i] - begin);
  }
};

// Parses and scores one chunk; a line that does not parse scores NaN.
void Score(const Predictor& predictor, SampleParser& parser, const std::string& path, Chunk& c) {
  parser.ResetBatch(&c.batch);
  c.rows.clear();
  c.scores.assign(c.ends.size(), std::nanf(""));
  for (size_t i = 0; i < c.ends.size(); ++i) {
    const std::string_view line = c.line(i);
    absl::Status s =
        line.empty() ? absl::InvalidArgumentError("empty line") : parser.Parse(line, &c.batch);
    if (s.ok()) {
      c.rows.push_back(static_cast<int>(i));
    } else {
      c.bad.push_back(absl::StrCat(path, ":", c.line_numbers[i], ": ", s.message()));
    }
  }
  c.status = predictor.Predict(c.batch, &c.probs);
  if (!c.status.ok()) return;
  for (size_t k = 0; k < c.rows.size(); ++k) c.scores[c.rows[k]] = c.probs[k];
}

int Main(const std::string& export_dir) {
  if (FLAGS_input.empty() || FLAGS_output.empty()) {
    return Fail("--input and --output are required (see --help)");
  }
  if (FLAGS_threads < 1 || FLAGS_batch_size < 1)
    return Fail("--threads and --batch_size must be >= 1");
  // Our threads share the cores; BLAS must not add its own.
  openblas_set_num_threads(1);
  const auto start = std::chrono::steady_clock::now();
  auto predictor = Predictor::Load(export_dir);
  if (!predictor.ok()) return Fail(predictor.status().ToString());
  const DataConfig& data = (*predictor)->config().data();

  auto lines = LineReader::Open(FLAGS_input);
  if (!lines.ok()) return Fail(lines.status().ToString());
  std::string_view line;
  std::vector<std::unique_ptr<SampleParser>> parsers;
  for (int t = 0; t < FLAGS_threads; ++t) {
    auto parser = SampleParser::Create(data);
    if (!parser.ok()) return Fail(parser.status().ToString());
    parsers.push_back(std::move(*parser));
  }
  (*lines)->set_quote(parsers[0]->record_quote());
  if (parsers[0]->has_header()) {
    auto more = (*lines)->Next(&line);
    if (!more.ok()) return Fail(more.status().ToString());
    if (!*more) return Fail(absl::StrCat(FLAGS_input, ": empty (expected a CSV header)"));
    for (auto& parser : parsers) {
      auto bound = parser->BindHeader(line, FLAGS_input);
      if (!bound.ok()) return Fail(bound.status().ToString());
    }
  }
  std::FILE* out = std::fopen(FLAGS_output.c_str(), "w");
  if (out == nullptr) return Fail(absl::StrCat(FLAGS_output, ": cannot create"));
  const double load_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  std::vector<Chunk> chunks(FLAGS_threads);
  int64_t rows = 0, bad = 0;
  bool done = false;
  while (!done) {
    // Read up to one chunk per thread.
    int filled = 0;
    for (; filled < FLAGS_threads && !done; ++filled) {
      Chunk& c = chunks[filled];
      c.Clear();
      while (static_cast<int>(c.ends.size()) < FLAGS_batch_size) {
        auto more = (*lines)->Next(&line);
        if (!more.ok()) return Fail(more.status().ToString());
        if (!*more) {
          done = true;
          break;
        }
        c.text.append(line);
        c.ends.push_back(c.text.size());
        c.line_numbers.push_back((*lines)->record_first_line());
      }
      if (c.ends.empty()) break;
    }
    if (filled == 0) break;
    if (filled == 1) {
      Score(**predictor, *parsers[0], FLAGS_input, chunks[0]);
    } else {
      std::vector<std::thread> threads;
      for (int t = 0; t < filled; ++t) {
        threads.emplace_back([&, t] { Score(**predictor, *parsers[t], FLAGS_input, chunks[t]); });
      }
      for (auto& th : threads) th.join();
    }
    for (int t = 0; t < filled; ++t) {
      const Chunk& c = chunks[t];
      if (!c.status.ok()) return Fail(c.status.ToString());
      for (const std::string& report : c.bad) {
        if (bad++ < FLAGS_report_bad_lines)
          std::fprintf(stderr, "ctr-predict: %s\n", report.c_str());
      }
      for (float p : c.scores) {
        if (std::isnan(p)) {
          std::fputs("nan\n", out);
        } else {
          std::fprintf(out, "%.8g\n", p);
        }
      }
      rows += static_cast<int64_t>(c.ends.size());
    }
  }
  if (std::fclose(out) != 0) return Fail(absl::StrCat(FLAGS_output, ": write failed"));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() -
      load_seconds;
  if (bad > FLAGS_report_bad_lines) {
    std::fprintf(stderr, "ctr-predict: ... %lld more malformed lines\n",
                 static_cast<long long>(bad - FLAGS_report_bad_lines));
  }
  std::printf(
      "ctr-predict: %lld rows (%lld malformed, written as nan) in %.2f s: %.0f rows/s "
      "(threads: %d; loading took %.2f s)\n",
      static_cast<long long>(rows), static_cast<long long>(bad), seconds,
      seconds > 0 ? rows / seconds : 0.0, FLAGS_threads, load_seconds);
  return 0;
}

}  // namespace
}  // namespace ctrps

int main(int argc, char** argv) {
  ctrps::ParseFlags(
      &argc, &argv,
      "scores a data file with an export (made by ctr-export).\n"
      "  ctr-predict EXPORT --input FILE --output FILE [--threads N]\n"
      "The input is read in the exported config's data.format (CSV: its first line is the\n"
      "header). The output has one probability (\"%.8g\") per data line, in input order, so\n"
      "output line i belongs to the i-th data line (for CSV, input line i + 1). A malformed line\n"
      "is reported as FILE:LINE on stderr and skipped: its output line is \"nan\", which keeps "
      "the\n"
      "lines aligned. Prints rows/s.");
  if (argc != 2) {
    std::fprintf(
        stderr,
        "usage: ctr-predict EXPORT --input FILE --output FILE [--threads N] (see --help)\n");
    return 2;
  }
  return ctrps::Main(argv[1]);
}
