// The worker's data reader: a thread that reads this worker's share of the
// data files into batches, ahead of training.
//
// Sharding: a record starting on physical line p (1-based) of file f is data
// line j = p - 1 (CSV: p - 2, the header excluded); it belongs to worker
// (f + j) % num_workers. (A record is a line, or for CSV several lines when a
// quoted field holds line breaks.)
// Workers thus take turns line by line (round robin, rotated by one per
// file), so W workers see disjoint sets of lines that together cover every
// line, each about 1/W of every file. Every worker still scans every file.
//
// Order: without a shuffle buffer, samples come in file order. With
// shuffle_buffer = S, the reader takes its next S lines (a "block", held as
// text), shuffles them with a generator seeded by (seed, epoch, where the
// block starts) and parses them in that order; batches run across block
// boundaries. The order is a pure function of the options, so it is the same
// on every run.
//
// Epochs: an epoch ends with a (possibly smaller) last batch, then
// kEndOfEpoch; after the last epoch Next() returns kEndOfData (and keeps
// returning it).
//
// Resume: every batch carries the position after it (Batch::position). A
// reader whose options equal the original ones except `start` = that position
// delivers exactly the batches and events that followed that batch (the last
// batch of an epoch is followed by that epoch's kEndOfEpoch). Save the
// position of the last batch a step consumed, not of one still queued.
//
// Bad lines (wrong column count, a label or number that does not parse,
// malformed tokens) are skipped and counted; the first report_bad_lines are
// logged as `<path>:<line>: <what>` and kept in stats(). Once at least
// min_lines_for_rate lines are read (or at the end of an epoch), a bad-line
// fraction above max_bad_line_rate fails the reader with InvalidArgument
// carrying the count and the first report. Empty lines are ignored.
#ifndef CTRPS_WORKER_DATA_READER_H_
#define CTRPS_WORKER_DATA_READER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/proto/config.pb.h"
#include "worker/data/batch.h"
#include "worker/data/sample_parser.h"

namespace ctrps {

class LineReader;
class SampleParser;

struct ReaderOptions {
  std::vector<std::string> files;  // read in this order
  int batch_size = 4096;
  int epochs = 1;
  int worker_rank = 0;
  int num_workers = 1;
  int shuffle_buffer = 0;  // samples per shuffle block; 0 = file order
  uint64_t seed = 2021;
  int queue_depth = 8;  // batches kept ready ahead of Next()
  double max_bad_line_rate = 0.001;
  int report_bad_lines = 5;
  int64_t min_lines_for_rate = 1000;
  ReadPosition start;  // where to begin (default: the first line of epoch 0)
};

enum class Split { kTrain, kValid, kTest };

// The files `entries` name under `dir` (unless absolute): a file as is, a
// glob (*, ?, [...]) as its matches in name order, a directory as its files
// not starting with '.' in name order. NotFound names the entry that matches
// nothing (`data.train: "part-*.gz" under /data matches no file`).
absl::StatusOr<std::vector<std::string>> ExpandDataFiles(
    const std::string& dir, const google::protobuf::RepeatedPtrField<std::string>& entries,
    const std::string& what);

// Options for one split of the experiment: files are data.<split> under
// data.dir (unless absolute), expanded by ExpandDataFiles; train uses train.epochs,
// data.shuffle_buffer and train.seed, valid and test one epoch in file order; all use
// train.batch_size and the data section's bad-line limits and queue depth.
// InvalidArgument if the split has no files or the rank is out of range.
absl::StatusOr<ReaderOptions> MakeReaderOptions(const ExperimentConfig& config, Split split,
                                                int worker_rank, int num_workers);

enum class ReadEvent { kBatch, kEndOfEpoch, kEndOfData };

// The moments of every scaled NUMERIC feature of `data` (FeatureConfig.scaling)
// over one epoch of `options` in file order (this worker's share: merge the
// workers' results with MergeNumericMoments), taken before scaling and after
// the log transform; missing values do not count. Per feature in config
// order; features that are not scaled get an empty entry. Errors: the
// Reader's (a missing file, the bad-line rate, ...).
absl::StatusOr<std::vector<NumericMoments>> GatherNumericMoments(const DataConfig& data,
                                                                 ReaderOptions options);

struct ReaderStats {
  int64_t lines = 0;    // this worker's non-empty lines, good and bad
  int64_t samples = 0;  // lines that became samples
  int64_t bad_lines = 0;
  std::vector<std::string> bad_line_reports;  // the first report_bad_lines
};

class Reader {
 public:
  // `data` gives the format and features (see sample_parser.h).
  Reader(const DataConfig& data, ReaderOptions options);
  ~Reader();  // Stop()s
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  // Checks the options, opens every file and binds every CSV header, then
  // starts the reading thread. Errors: NotFound `<path>: no such file`;
  // InvalidArgument for the config (`<path>:1: column "item" (feature "item")
  // is not in the header`) or options; FailedPrecondition if called twice.
  absl::Status Start();

  // Waits up to `timeout` for the next item. kBatch: *batch now holds the
  // batch (its previous buffers are recycled by the reader, so passing the
  // same Batch every time never allocates). kEndOfEpoch / kEndOfData: *batch
  // is untouched. Errors: the reader's failure (bad-line rate, I/O), sticky;
  // DeadlineExceeded if nothing arrived in time (the reader keeps going);
  // FailedPrecondition before Start() or after Stop().
  // One consumer thread at a time.
  absl::StatusOr<ReadEvent> Next(Batch* batch, absl::Duration timeout);

  // Stops and joins the thread. Idempotent.
  void Stop();

  // Counters as of the last delivered batch or event. Thread-safe.
  ReaderStats stats() const;

 private:
  struct Item {
    ReadEvent event = ReadEvent::kBatch;
    absl::Status status;
    Batch batch;
  };
  // A line held in the shuffle block.
  struct BlockLine {
    size_t offset;  // into block_text_
    size_t size;
    int32_t file;
    int64_t line;  // physical, 1-based
  };

  void Run();
  absl::Status ReadEpoch(int epoch, ReadPosition from);
  // The next non-empty line of this worker (*line = {} at the end of the
  // files); *physical is its 1-based line number in file file_.
  absl::Status NextOwnedLine(std::string_view* line, int64_t* physical);
  // Parses one line into `dst`, counting and reporting it if bad.
  absl::Status ParseLine(std::string_view line, int file, int64_t physical, Batch* dst);
  absl::Status OpenFile(int file, int64_t line);
  absl::Status BadLine(int file, int64_t line, const absl::Status& what);
  absl::Status CheckBadLineRate(bool at_end);
  // Hands current_ to the consumer (waiting for room) and takes back a
  // recycled batch. Cancelled when stopping.
  absl::Status EmitBatch(const ReadPosition& position);
  absl::Status EmitItem(ReadEvent event, absl::Status status);
  void PublishStats() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const DataConfig data_;
  const ReaderOptions options_;
  std::unique_ptr<SampleParser> parser_;
  std::thread thread_;

  // Reading thread only.
  int file_ = 0;                       // file being read
  std::unique_ptr<LineReader> lines_;  // nullptr past the last file
  int header_lines_ = 0;
  int64_t scanned_ = 0;            // lines looked at, for stop checks
  std::vector<int> file_binding_;  // parser header binding per file
  Batch current_;                  // batch being filled
  std::string block_text_;         // shuffle block: raw lines, back to back
  std::vector<BlockLine> block_;
  std::vector<int32_t> order_;  // shuffle permutation
  ReaderStats counts_;          // published to stats_ at each item
  std::string first_bad_;       // first bad-line report, for the rate error

  mutable absl::Mutex mu_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<Item> ring_ ABSL_GUARDED_BY(mu_);
  size_t head_ ABSL_GUARDED_BY(mu_) = 0;
  size_t count_ ABSL_GUARDED_BY(mu_) = 0;
  ReaderStats stats_ ABSL_GUARDED_BY(mu_);
  std::string where_ ABSL_GUARDED_BY(mu_);  // reading thread's file:line, for timeouts
};

}  // namespace ctrps

#endif  // CTRPS_WORKER_DATA_READER_H_
