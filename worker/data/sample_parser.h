// Turns one line of a data file into one sample of a Batch, for every format
// of DataConfig.Format. The reader owns one parser per thread.
//
// Formats (DataConfig.format) and how features address their column:
//   CSV         Header line; columns by header name (FeatureConfig.column,
//               which defaults to the feature name) or by 0-based
//               column_index. Separator data.delimiter (any one byte, "\t"
//               included). RFC 4180 quoting with data.quote: a quoted field
//               may hold the delimiter, doubled quotes and line breaks (the
//               LineReader keeps such a record whole, see record_quote());
//               text after a closing quote or an unclosed quote makes a bad
//               line. With data.trim_spaces, spaces around values and header
//               names are dropped (not inside quotes). A UTF-8 byte-order mark
//               before the header is skipped. Every line must have as many
//               columns as the header.
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
// column for DIN_TEXT. A label is a number, unless data.label_positive lists
// the strings that mean 1 (anything else is 0) or data.label_threshold turns
// a number into label >= threshold. An empty label is a bad line.
//
// Missing values: a cell equal to one of the feature's missing_values (or
// data.missing_values; by default "", "?", "NA", "N/A", "NULL", "null", "nan",
// "NaN") is missing; see FeatureConfig.missing_values for what it becomes.
//
// Keys (field_hash = HashBytes(feature.hash_as)):
//   CATEGORICAL  FeatureKey(field_hash, value); missing -> MissingKey(field_hash).
//   NUMERIC      MissingKey(field_hash) for every sample; the value is the
//                number, log-transformed and scaled as configured (missing:
//                missing_fill, or NumericMissingKey(field_hash) with value 1
//                under missing_embedding).
//   BUCKETIZED   FeatureKey(field_hash, decimal string of the bucket), with
//                LOG2_SQUARED: v > 2 ? floor(ln(v)^2) : floor(v), FLOOR:
//                floor(v); missing -> MissingKey(field_hash).
//   MULTI_VALUED, SEQUENCE  the list split by `separator` (one character;
//                empty items dropped), keys of the last max_len items in
//                order; a missing cell gives no keys.
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

// The key of a missing NUMERIC value under missing_embedding.
inline uint64_t NumericMissingKey(uint64_t field_hash) {
  return FeatureKey(field_hash, std::string_view("\x01missing", 8));
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

  // The quote character a LineReader of this format's files must honour
  // (LineReader::set_quote): data.quote for CSV, '\0' otherwise.
  char record_quote() const { return quote_; }

  // True if a NUMERIC feature is scaled: Create() then needs its statistics
  // (FeatureConfig.stats), which ComputeNumericStats gathers.
  static bool NeedsNumericStats(const DataConfig& data);

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
  // The missing-value tokens of a field, with a quick first-byte filter.
  struct MissingSet {
    std::vector<std::string> tokens;
    bool first_byte[256] = {};
    size_t max_size = 0;
    // A blank cell is always missing, whatever the list says.
    bool Contains(std::string_view cell) const {
      if (cell.empty()) return true;
      if (cell.size() > max_size || !first_byte[static_cast<unsigned char>(cell[0])]) return false;
      for (const std::string& t : tokens) {
        if (t == cell) return true;
      }
      return false;
    }
  };
  struct FieldPlan {
    std::string name;
    MissingSet missing;
    float missing_fill = 0;
    bool missing_embedding = false;
    uint64_t numeric_missing_key = 0;
    bool log_transform = false;
    double shift = 0;  // value = (v - shift) * scale
    double scale = 1;
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
  absl::Status SplitRecord(std::string_view line);  // into cells_
  float Scaled(const FieldPlan& plan, double v) const;
  std::string_view ColumnName(int column) const;

  DataConfig::Format format_;
  char delimiter_ = ',';
  char quote_ = '\0';  // CSV quoting; '\0' = none
  bool trim_ = false;  // CSV: drop spaces around cells
  bool trim_tabs_ = false;
  std::vector<std::string> label_positive_;
  bool has_threshold_ = false;
  double threshold_ = 0;
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
  std::string unquoted_;  // cells with doubled quotes, undoubled
  std::vector<uint8_t> seen_;
};

// Splits `s` at `delim` into `out` (cleared first); empty cells are kept.
void SplitCells(std::string_view s, char delim, std::vector<std::string_view>* out);

// Splits one CSV record per RFC 4180 into `out` (cleared first): a cell in
// `quote` may hold `delim`, line breaks and doubled quotes; the cell is its
// content without the quotes (a view into `s`, or into `scratch` when quotes
// were undoubled; `scratch` is cleared first and must outlive `out`). With
// `trim`, spaces (and tabs if `trim_tabs`) around cells are dropped, not
// inside quotes. A quote inside an unquoted cell is kept as a character.
// InvalidArgument: `column 3: unclosed quote`, `column 2: "x" after the
// closing quote`.
absl::Status SplitCsvRecord(std::string_view s, char delim, char quote, bool trim, bool trim_tabs,
                            std::vector<std::string_view>* out, std::string* scratch);

// Sums for the statistics of one NUMERIC feature (GatherNumericMoments in
// reader.h gathers them from a worker's share of the training files).
struct NumericMoments {
  int64_t count = 0;
  double sum = 0, sum_squares = 0;
  double min = 0, max = 0;
};
// Merges `b` into `a` (per feature).
void MergeNumericMoments(std::vector<NumericMoments>* a, const std::vector<NumericMoments>& b);
// Writes the statistics into data's scaled features (FeatureConfig.stats).
// FailedPrecondition if a scaled feature saw no value.
absl::Status SetNumericStats(const std::vector<NumericMoments>& moments, DataConfig* data);

}  // namespace ctrps

#endif  // CTRPS_WORKER_DATA_SAMPLE_PARSER_H_
