#include "worker/data/reader.h"

#include <glob.h>

#include <algorithm>
#include <filesystem>
#include <numeric>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/hash.h"
#include "common/status.h"
#include "glog/logging.h"
#include "worker/data/line_reader.h"
#include "worker/data/sample_parser.h"

namespace ctrps {
namespace {

// How often (in lines) the reading thread looks for a stop request.
constexpr int64_t kCancelCheckLines = 4096;
// Files are scanned with this buffer size; a few MB amortise the reads.
constexpr size_t kReadBuffer = 4 << 20;

std::string JoinPath(const std::string& dir, const std::string& file) {
  if (dir.empty() || absl::StartsWith(file, "/")) return file;
  return absl::StrCat(dir, absl::EndsWith(dir, "/") ? "" : "/", file);
}

// A small deterministic generator for the shuffle (SplitMix64).
class ShuffleRng {
 public:
  explicit ShuffleRng(uint64_t seed) : state_(seed) {}
  uint64_t Next() { return Mix64(state_++ * 0x9e3779b97f4a7c15ULL); }
  // Uniform in [0, n).
  uint32_t Below(uint32_t n) {
    return static_cast<uint32_t>((static_cast<unsigned __int128>(Next()) * n) >> 64);
  }

 private:
  uint64_t state_;
};

}  // namespace

absl::StatusOr<std::vector<std::string>> ExpandDataFiles(
    const std::string& dir, const google::protobuf::RepeatedPtrField<std::string>& entries,
    const std::string& what) {
  std::vector<std::string> files;
  for (const std::string& entry : entries) {
    const std::string path = JoinPath(dir, entry);
    std::error_code ec;
    if (entry.find_first_of("*?[") != std::string::npos) {
      glob_t g{};
      const int rc = ::glob(path.c_str(), GLOB_ERR, nullptr, &g);
      std::vector<std::string> matches;
      for (size_t i = 0; rc == 0 && i < g.gl_pathc; ++i) {
        if (!std::filesystem::is_directory(g.gl_pathv[i], ec)) matches.emplace_back(g.gl_pathv[i]);
      }
      globfree(&g);
      if (rc != 0 && rc != GLOB_NOMATCH) {
        return absl::UnavailableError(
            absl::StrFormat("%s: \"%s\": cannot list %s", what, entry, path));
      }
      if (matches.empty()) {
        return absl::NotFoundError(
            absl::StrFormat("%s: \"%s\" matches no file (%s)", what, entry, path));
      }
      std::sort(matches.begin(), matches.end());
      files.insert(files.end(), matches.begin(), matches.end());
    } else if (std::filesystem::is_directory(path, ec)) {
      std::vector<std::string> parts;
      for (const auto& e : std::filesystem::directory_iterator(path, ec)) {
        const std::string name = e.path().filename().string();
        if (name.empty() || name[0] == '.' || e.is_directory(ec)) continue;
        parts.push_back(e.path().string());
      }
      if (ec) {
        return absl::UnavailableError(
            absl::StrFormat("%s: directory %s: %s", what, path, ec.message()));
      }
      if (parts.empty()) {
        return absl::NotFoundError(absl::StrFormat("%s: directory %s has no files", what, path));
      }
      std::sort(parts.begin(), parts.end());
      files.insert(files.end(), parts.begin(), parts.end());
    } else {
      files.push_back(path);
    }
  }
  return files;
}

absl::StatusOr<ReaderOptions> MakeReaderOptions(const ExperimentConfig& config, Split split,
                                                int worker_rank, int num_workers) {
  const DataConfig& data = config.data();
  const char* name = split == Split::kTrain ? "train" : split == Split::kValid ? "valid" : "test";
  const auto& files = split == Split::kTrain   ? data.train()
                      : split == Split::kValid ? data.valid()
                                               : data.test();
  if (files.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("data.", name, ": no files configured"));
  }
  if (num_workers < 1 || worker_rank < 0 || worker_rank >= num_workers) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "reader: worker rank %d out of range for %d workers", worker_rank, num_workers));
  }
  ReaderOptions o;
  ASSIGN_OR_RETURN(o.files, ExpandDataFiles(data.dir(), files, absl::StrCat("data.", name)));
  o.batch_size = config.train().batch_size();
  o.worker_rank = worker_rank;
  o.num_workers = num_workers;
  o.queue_depth = std::max(1, data.reader_queue());
  o.max_bad_line_rate = data.max_bad_line_rate();
  o.report_bad_lines = data.report_bad_lines();
  if (split == Split::kTrain) {
    o.epochs = config.train().epochs();
    o.shuffle_buffer = data.shuffle_buffer();
    o.seed = config.train().seed();
  }
  return o;
}

Reader::Reader(const DataConfig& data, ReaderOptions options)
    : data_(data), options_(std::move(options)) {}

Reader::~Reader() { Stop(); }

absl::Status Reader::Start() {
  {
    absl::MutexLock lock(&mu_);
    if (started_) return absl::FailedPreconditionError("reader: Start() called twice");
  }
  const ReaderOptions& o = options_;
  auto bad = [](const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat("reader: ", what));
  };
  if (o.files.empty()) return bad("no files to read");
  if (o.batch_size <= 0) return bad(absl::StrCat("batch_size must be > 0, got ", o.batch_size));
  if (o.epochs <= 0) return bad(absl::StrCat("epochs must be > 0, got ", o.epochs));
  if (o.num_workers < 1 || o.worker_rank < 0 || o.worker_rank >= o.num_workers) {
    return bad(absl::StrFormat("worker rank %d out of range for %d workers", o.worker_rank,
                               o.num_workers));
  }
  if (o.shuffle_buffer < 0) return bad("shuffle_buffer must be >= 0");
  if (o.queue_depth < 1) return bad("queue_depth must be >= 1");
  const ReadPosition& s = o.start;
  if (s.epoch < 0 || s.epoch > o.epochs || s.file < 0 ||
      s.file > static_cast<int>(o.files.size()) || s.line < 0 || s.skip < 0 ||
      (s.skip > 0 && o.shuffle_buffer == 0)) {
    return bad(absl::StrFormat(
        "start position (epoch %d, file %d, line %d, skip %d) does not fit %d epochs of %d "
        "files%s",
        s.epoch, s.file, s.line, s.skip, o.epochs, o.files.size(),
        o.shuffle_buffer == 0 ? " without a shuffle buffer" : ""));
  }

  ASSIGN_OR_RETURN(parser_, SampleParser::Create(data_));
  // Every file must open and every CSV header must have the configured
  // columns before the first batch, not hours into the job.
  file_binding_.assign(o.files.size(), 0);
  for (size_t f = 0; f < o.files.size(); ++f) {
    const std::string& path = o.files[f];
    ASSIGN_OR_RETURN(std::unique_ptr<LineReader> r, LineReader::Open(path, 64 << 10));
    r->set_quote(parser_->record_quote());
    if (!parser_->has_header()) continue;
    std::string_view header;
    ASSIGN_OR_RETURN(bool has, r->Next(&header));
    if (!has) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": empty file, expected a header line"));
    }
    ASSIGN_OR_RETURN(file_binding_[f], parser_->BindHeader(header, path));
  }
  parser_->ResetBatch(&current_);

  absl::MutexLock lock(&mu_);
  ring_.resize(o.queue_depth);
  started_ = true;
  thread_ = std::thread(&Reader::Run, this);
  return absl::OkStatus();
}

void Reader::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

ReaderStats Reader::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

void Reader::PublishStats() {
  stats_.lines = counts_.lines;
  stats_.samples = counts_.samples;
  stats_.bad_lines = counts_.bad_lines;
}

absl::StatusOr<ReadEvent> Reader::Next(Batch* batch, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  if (!started_) return absl::FailedPreconditionError("reader: Next() before Start()");
  if (stopping_) return absl::FailedPreconditionError("reader: Next() after Stop()");
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return count_ > 0 || stopping_; };
  if (!mu_.AwaitWithTimeout(absl::Condition(&ready), timeout)) {
    return absl::DeadlineExceededError(
        absl::StrCat("reader: no batch within ", absl::FormatDuration(timeout),
                     "; the reading thread is at ", where_.empty() ? "its start" : where_));
  }
  if (count_ == 0) return absl::FailedPreconditionError("reader: Next() after Stop()");
  Item& item = ring_[head_];
  if (!item.status.ok()) return item.status;
  if (item.event == ReadEvent::kEndOfData) return ReadEvent::kEndOfData;  // stays queued
  const ReadEvent event = item.event;
  if (event == ReadEvent::kBatch) std::swap(*batch, item.batch);
  head_ = (head_ + 1) % ring_.size();
  --count_;
  return event;
}

void Reader::Run() {
  absl::Status status;
  for (int epoch = options_.start.epoch; epoch < options_.epochs && status.ok(); ++epoch) {
    const ReadPosition from =
        epoch == options_.start.epoch ? options_.start : ReadPosition{epoch, 0, 0, 0};
    status = ReadEpoch(epoch, from);
  }
  lines_.reset();
  if (absl::IsCancelled(status)) return;
  if (status.ok()) {
    (void)EmitItem(ReadEvent::kEndOfData, absl::OkStatus());
  } else {
    LOG(ERROR) << "reader: " << status;
    (void)EmitItem(ReadEvent::kBatch, status);
  }
}

absl::Status Reader::ReadEpoch(int epoch, ReadPosition from) {
  RETURN_IF_ERROR(OpenFile(from.file, from.line));
  auto here = [&] {
    return ReadPosition{epoch, file_, lines_ == nullptr ? 0 : lines_->lines_read(), 0};
  };
  const int batch_size = options_.batch_size;
  std::string_view line;
  int64_t physical;
  if (options_.shuffle_buffer == 0) {
    while (true) {
      RETURN_IF_ERROR(NextOwnedLine(&line, &physical));
      if (line.data() == nullptr) break;
      RETURN_IF_ERROR(ParseLine(line, file_, physical, &current_));
      if (current_.size == batch_size) RETURN_IF_ERROR(EmitBatch(here()));
    }
  } else {
    // Lines, not parsed samples, are shuffled: a sample is then read from one
    // contiguous line instead of gathered from 40 columns.
    int64_t skip = from.skip;
    while (true) {
      const ReadPosition block_start = here();
      block_text_.clear();
      block_.clear();
      while (static_cast<int>(block_.size()) < options_.shuffle_buffer) {
        RETURN_IF_ERROR(NextOwnedLine(&line, &physical));
        if (line.data() == nullptr) break;
        block_.push_back(BlockLine{block_text_.size(), line.size(), file_, physical});
        block_text_.append(line);
      }
      const int n = static_cast<int>(block_.size());
      if (n == 0) break;
      const ReadPosition block_end = here();
      if (skip > n) {
        return absl::InvalidArgumentError(
            absl::StrFormat("reader: start position skips %d lines of a block of %d at %s:%d", skip,
                            n, options_.files[block_start.file], block_start.line));
      }
      order_.resize(n);
      std::iota(order_.begin(), order_.end(), 0);
      ShuffleRng rng(
          Mix64(options_.seed) ^
          Mix64(static_cast<uint64_t>(epoch) << 32 ^ static_cast<uint64_t>(block_start.file)) ^
          Mix64(static_cast<uint64_t>(block_start.line) + 0x51ed27ULL));
      for (int i = n - 1; i > 0; --i) std::swap(order_[i], order_[rng.Below(i + 1)]);
      for (int k = static_cast<int>(skip); k < n; ++k) {
        const BlockLine& b = block_[order_[k]];
        RETURN_IF_ERROR(ParseLine(std::string_view(block_text_.data() + b.offset, b.size), b.file,
                                  b.line, &current_));
        if (current_.size == batch_size) {
          ReadPosition at = block_end;
          if (k + 1 < n) {
            at = block_start;
            at.skip = k + 1;
          }
          RETURN_IF_ERROR(EmitBatch(at));
        }
      }
      skip = 0;
      if (n < options_.shuffle_buffer) break;  // the files ended
    }
  }
  RETURN_IF_ERROR(CheckBadLineRate(/*at_end=*/true));
  // Past the last file: resuming there yields this epoch's end, then the next.
  if (current_.size > 0) {
    RETURN_IF_ERROR(
        EmitBatch(ReadPosition{epoch, static_cast<int32_t>(options_.files.size()), 0, 0}));
  }
  return EmitItem(ReadEvent::kEndOfEpoch, absl::OkStatus());
}

absl::Status Reader::OpenFile(int file, int64_t line) {
  lines_.reset();
  file_ = file;
  if (file >= static_cast<int>(options_.files.size())) return absl::OkStatus();
  const std::string& path = options_.files[file];
  ASSIGN_OR_RETURN(lines_, LineReader::Open(path, kReadBuffer));
  lines_->set_quote(parser_->record_quote());
  header_lines_ = parser_->has_header() ? 1 : 0;
  if (header_lines_ > 0) {  // bound in Start()
    std::string_view header;
    ASSIGN_OR_RETURN(bool has, lines_->Next(&header));
    if (!has) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": empty file, expected a header line"));
    }
  }
  if (line > lines_->lines_read()) {
    ASSIGN_OR_RETURN(bool reached, lines_->SkipTo(line));
    if (!reached) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: start position line %d is past the end of the file (%d lines)", path,
                          line, lines_->lines_read()));
    }
  }
  absl::MutexLock lock(&mu_);
  where_ = absl::StrCat(path, ":", lines_->lines_read());
  return absl::OkStatus();
}

absl::Status Reader::NextOwnedLine(std::string_view* line, int64_t* physical) {
  const int64_t workers = options_.num_workers;
  const int64_t rank = options_.worker_rank;
  while (lines_ != nullptr) {
    if (++scanned_ % kCancelCheckLines == 0) {
      absl::MutexLock lock(&mu_);
      if (stopping_) return absl::CancelledError("reader stopped");
      where_ = absl::StrCat(lines_->path(), ":", lines_->lines_read());
    }
    ASSIGN_OR_RETURN(bool more, lines_->Next(line));
    if (!more) {
      RETURN_IF_ERROR(OpenFile(file_ + 1, 0));
      continue;
    }
    *physical = lines_->record_first_line();
    const int64_t data_line = *physical - 1 - header_lines_;
    if ((file_ + data_line) % workers == rank && !line->empty()) return absl::OkStatus();
  }
  *line = std::string_view();
  return absl::OkStatus();
}

absl::Status Reader::ParseLine(std::string_view line, int file, int64_t physical, Batch* dst) {
  ++counts_.lines;
  parser_->SelectHeader(file_binding_[file]);  // shuffled blocks mix files
  absl::Status s = parser_->Parse(line, dst);
  if (s.ok()) {
    ++counts_.samples;
  } else {
    RETURN_IF_ERROR(BadLine(file, physical, s));
  }
  if (counts_.lines == options_.min_lines_for_rate) {
    RETURN_IF_ERROR(CheckBadLineRate(/*at_end=*/false));
  }
  return absl::OkStatus();
}

absl::Status Reader::BadLine(int file, int64_t line, const absl::Status& what) {
  ++counts_.bad_lines;
  if (counts_.bad_lines <= options_.report_bad_lines || first_bad_.empty()) {
    std::string report = absl::StrCat(options_.files[file], ":", line, ": ", what.message());
    if (counts_.bad_lines <= options_.report_bad_lines) {
      LOG(WARNING) << "bad line skipped: " << report;
      absl::MutexLock lock(&mu_);
      stats_.bad_line_reports.push_back(report);
    }
    if (first_bad_.empty()) first_bad_ = std::move(report);
  }
  return CheckBadLineRate(/*at_end=*/false);
}

absl::Status Reader::CheckBadLineRate(bool at_end) {
  const int64_t bad = counts_.bad_lines;
  const int64_t total = counts_.lines;
  if (bad == 0 || (!at_end && total < options_.min_lines_for_rate)) return absl::OkStatus();
  if (static_cast<double>(bad) <= options_.max_bad_line_rate * static_cast<double>(total)) {
    return absl::OkStatus();
  }
  const std::string& path = options_.files[std::min<size_t>(file_, options_.files.size() - 1)];
  return absl::InvalidArgumentError(absl::StrFormat(
      "%s: %d of %d lines read are malformed (%.3g%%), more than data.max_bad_line_rate %g; "
      "first: %s",
      path, bad, total, 100.0 * bad / total, options_.max_bad_line_rate, first_bad_));
}

absl::Status Reader::EmitBatch(const ReadPosition& position) {
  current_.position = position;
  {
    absl::MutexLock lock(&mu_);
    auto room = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return count_ < ring_.size() || stopping_;
    };
    mu_.Await(absl::Condition(&room));
    if (stopping_) return absl::CancelledError("reader stopped");
    Item& slot = ring_[(head_ + count_) % ring_.size()];
    slot.event = ReadEvent::kBatch;
    slot.status = absl::OkStatus();
    std::swap(slot.batch, current_);
    ++count_;
    PublishStats();
  }
  parser_->ResetBatch(&current_);  // the slot's old buffers, given back by Next()
  return absl::OkStatus();
}

absl::Status Reader::EmitItem(ReadEvent event, absl::Status status) {
  absl::MutexLock lock(&mu_);
  auto room = [this]()
                  ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return count_ < ring_.size() || stopping_; };
  mu_.Await(absl::Condition(&room));
  if (stopping_) return absl::CancelledError("reader stopped");
  Item& slot = ring_[(head_ + count_) % ring_.size()];
  slot.event = event;
  slot.status = std::move(status);
  ++count_;
  PublishStats();
  return absl::OkStatus();
}

absl::StatusOr<std::vector<NumericMoments>> GatherNumericMoments(const DataConfig& data,
                                                                 ReaderOptions options) {
  // Read with scaling off, and missing numbers under a key of their own, so
  // that the values are the log-transformed numbers and the missing ones can
  // be told apart.
  DataConfig raw = data;
  std::vector<uint64_t> missing_keys(raw.feature_size(), 0);  // 0: not scaled
  for (int i = 0; i < raw.feature_size(); ++i) {
    FeatureConfig* f = raw.mutable_feature(i);
    if (f->kind() == FeatureConfig::NUMERIC && f->scaling() != FeatureConfig::NO_SCALING) {
      const std::string& table = f->table().empty() ? f->name() : f->table();
      missing_keys[i] = NumericMissingKey(HashBytes(f->hash_as().empty() ? table : f->hash_as()));
      f->set_missing_embedding(true);
    }
    f->set_scaling(FeatureConfig::NO_SCALING);
    f->clear_stats();
  }
  options.epochs = 1;
  options.shuffle_buffer = 0;
  options.start = ReadPosition{};
  Reader reader(raw, std::move(options));
  RETURN_IF_ERROR(reader.Start());
  std::vector<NumericMoments> moments(raw.feature_size());
  Batch batch;
  while (true) {
    ASSIGN_OR_RETURN(ReadEvent event, reader.Next(&batch, absl::Minutes(10)));
    if (event == ReadEvent::kEndOfData) return moments;
    if (event != ReadEvent::kBatch) continue;
    for (int i = 0; i < raw.feature_size(); ++i) {
      if (missing_keys[i] == 0) continue;
      const FieldBatch& fb = batch.fields[i];
      NumericMoments& m = moments[i];
      for (int b = 0; b < batch.size; ++b) {
        if (fb.keys[b] == missing_keys[i]) continue;
        const double v = fb.values[b];
        if (m.count == 0 || v < m.min) m.min = v;
        if (m.count == 0 || v > m.max) m.max = v;
        ++m.count;
        m.sum += v;
        m.sum_squares += v * v;
      }
    }
  }
}

}  // namespace ctrps
