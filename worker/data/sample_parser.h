// Turns one line of a data file into one sample of a Batch, for every format
// of DataConfig.Format. The reader owns one parser per thread.
//
// Formats (DataConfig.format) and how features address their column:
//   CSV         Header line; columns by header name (FeatureConfig.column,
//               which defaults to the feature name) or by 0-based
//               column_index. Separator data.delimiter (one character).
//               No quoting. Every line must have as many columns as the header.
//   CRITEO_TSV  No header; 40 tab-separated columns named label, I1..I13,
//               C1..C26 (or column_index 0..39, label included).
//   DIN_TEXT    No header; 5 ';'-separated columns named hist_items,
//               hist_cates, target_item, target_cate, label (or column_index
//               0..4). List items are space-separated unless the feature sets
//               `separator`.
//   LIBSVM      `label idx:val idx:val ...`, whitespace-separated.
//   LIBFM       `label field:idx:val ...` (`field:idx` means val 1).
//               For both sparse formats, leading tokens without ':' are "head"
//               columns (labels, ids; the rest are ignored), then feature
//               tokens. A feature with column_index c takes the c-th feature
//               token (label excluded); a feature addressed by `column` takes
//               every token whose field equals it (for LIBSVM the field is
//               idx). The categorical value of a token is its idx, the number
//               of a token is its val. A label of -1 reads as 0.
//               data.delimiter applies only when set explicitly (Ali-CCP's
//               `id,click,conversion,field:feature,...` is LIBFM with
//               delimiter "," and label "1,2").
// Where column_index >= 0 it wins over `column`.
//
// Labels: data.label names one column, or several separated by ','
// (multi-task, e.g. "click,conversion"); for headerless formats a label may be
// a decimal column index (LIBSVM/LIBFM: index among the head columns). The
// default "label" is column 0 for CRITEO_TSV/LIBSVM/LIBFM and the `label`
// column for DIN_TEXT.
//
// Keys (field_hash = HashBytes(feature.hash_as)):
//   CATEGORICAL  FeatureKey(field_hash, value); blank -> MissingKey(field_hash).
//   NUMERIC      MissingKey(field_hash) for every sample; the value is the
//                number (blank = 0).
//   BUCKETIZED   FeatureKey(field_hash, decimal string of the bucket), with
//                LOG2_SQUARED: v > 2 ? floor(ln(v)^2) : floor(v), FLOOR:
//                floor(v); blank -> MissingKey(field_hash).
//   MULTI_VALUED, SEQUENCE  the list split by `separator` (one character;
//                empty items dropped), keys of the last max_len items in
//                order; a blank cell gives no keys.
#ifndef CTRPS_WORKER_DATA_SAMPLE_PARSER_H_
#define CTRPS_WORKER_DATA_SAMPLE_PARSER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/hash.h"
#include "common/proto/config.pb.h"
#include "worker/data/batch.h"

namespace ctrps {

// The key of a blank value of the field (and the one key of a NUMERIC field).
inline uint64_t MissingKey(uint64_t field_hash) {
  return FeatureKey(field_hash, std::string_view());
}

// Criteo's rule and plain flooring, as integers.
int64_t BucketOf(double v, FeatureConfig::Bucketing bucketing);

class SampleParser {
 public:
  // Validates the data config for its format: known column names, one-
  // character delimiter and separators, label columns. InvalidArgument names
  // the feature and the column.
  static absl::StatusOr<std::unique_ptr<SampleParser>> Create(const DataConfig& data);

  // True for CSV: each file starts with a header that must be bound.
  bool has_header() const { return format_ == DataConfig::CSV; }

  // Resolves CSV columns against a file's header line and makes that binding
  // current; returns its id for SelectHeader(). Files may order their columns
  // differently: bind each file's header and select it before parsing its
  // lines. InvalidArgument: `<path>:1: column "item" (feature "item") is not
  // in the header`. Other formats: a no-op returning 0.
  absl::StatusOr<int> BindHeader(std::string_view header, std::string_view path);

  // Makes the binding `id` (from BindHeader) current again. Cheap.
  void SelectHeader(int id);

  int num_fields() const { return static_cast<int>(fields_.size()); }
  int num_labels() const { return static_cast<int>(labels_.size()); }

  // Empties `batch` and shapes it for this parser's fields and labels.
  void ResetBatch(Batch* batch) const { batch->Reset(num_fields(), num_labels()); }

  // Parses `line` (no newline) and appends one sample to `batch`. On error
  // the batch is left as it was and the status (InvalidArgument) says what is
  // wrong, without the file and line, e.g. `column "I5": expected a number,
  // got "x"` or `expected 40 columns, got 39`.
  absl::Status Parse(std::string_view line, Batch* batch);

 private:
  struct FieldPlan {
    std::string name;
    FeatureConfig::Kind kind;
    FeatureConfig::Bucketing bucketing;
    uint64_t field_hash;
    uint64_t missing_key;
    char separator;
    int max_len;
    std::string column;  // column name as configured (by-name addressing)
    int column_index;    // configured index, or -1
    int resolved;        // column used for delimited formats
  };

  explicit SampleParser(DataConfig::Format format) : format_(format) {}
  absl::Status ResolveColumns(const std::vector<std::string_view>& names, std::string_view where);
  absl::Status ParseDelimited(std::string_view line, Batch* batch);
  absl::Status ParseSparse(std::string_view line, Batch* batch);
  absl::Status AppendCell(const FieldPlan& plan, std::string_view cell, FieldBatch* out);
  absl::Status AppendSparseToken(const FieldPlan& plan, std::string_view idx, std::string_view val,
                                 FieldBatch* out);
  absl::Status ParseLabel(std::string_view cell, int label, float* out) const;
  std::string_view ColumnName(int column) const;

  DataConfig::Format format_;
  char delimiter_ = ',';
  bool whitespace_ = false;  // sparse formats without an explicit delimiter
  std::vector<FieldPlan> fields_;
  std::vector<std::string> labels_;  // as configured
  std::vector<int> label_columns_;
  int expected_columns_ = 0;  // delimited formats
  int head_columns_ = 0;      // sparse formats: head columns needed for labels

  // CSV: the column bindings of the headers seen; `current_` is in use.
  struct Binding {
    std::vector<int> columns;  // per field
    std::vector<int> labels;
    int expected_columns;
    std::vector<std::string> header;
  };
  std::vector<Binding> bindings_;
  int current_ = -1;

  // Sparse formats.
  absl::flat_hash_map<std::string, std::vector<int>> by_field_;
  std::vector<std::vector<int>> by_position_;

  // Scratch, reused across lines.
  std::vector<std::string_view> cells_;
  std::vector<std::string_view> items_;
  std::vector<uint8_t> seen_;
};

// Splits `s` at `delim` into `out` (cleared first); empty cells are kept.
void SplitCells(std::string_view s, char delim, std::vector<std::string_view>* out);

}  // namespace ctrps

#endif  // CTRPS_WORKER_DATA_SAMPLE_PARSER_H_
