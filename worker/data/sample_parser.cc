#include "worker/data/sample_parser.h"

#include <charconv>
#include <cmath>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/status.h"

namespace ctrps {
namespace {

constexpr int kCriteoColumns = 40;
constexpr size_t kMaxQuoted = 40;  // longest value quoted in an error message

const std::vector<std::string>& CriteoColumnNames() {
  static const std::vector<std::string>* names = [] {
    auto* v = new std::vector<std::string>{"label"};
    for (int i = 1; i <= 13; ++i) v->push_back(absl::StrCat("I", i));
    for (int i = 1; i <= 26; ++i) v->push_back(absl::StrCat("C", i));
    return v;
  }();
  return *names;
}

const std::vector<std::string>& DinColumnNames() {
  static const std::vector<std::string>* names = new std::vector<std::string>{
      "hist_items", "hist_cates", "target_item", "target_cate", "label"};
  return *names;
}

const char* FormatName(DataConfig::Format f) {
  switch (f) {
    case DataConfig::CSV:
      return "CSV";
    case DataConfig::CRITEO_TSV:
      return "CRITEO_TSV";
    case DataConfig::LIBSVM:
      return "LIBSVM";
    case DataConfig::LIBFM:
      return "LIBFM";
    case DataConfig::DIN_TEXT:
      return "DIN_TEXT";
  }
  return "?";
}

// absl::string_view is not std::string_view in this abseil build.
absl::string_view Sv(std::string_view s) { return absl::string_view(s.data(), s.size()); }

bool IsSparse(DataConfig::Format f) { return f == DataConfig::LIBSVM || f == DataConfig::LIBFM; }

bool IsSingleValued(FeatureConfig::Kind k) {
  return k != FeatureConfig::MULTI_VALUED && k != FeatureConfig::SEQUENCE;
}

// `s` for an error message: quoted, cut short if long.
std::string Quote(std::string_view s) {
  if (s.size() > kMaxQuoted) return absl::StrCat("\"", Sv(s.substr(0, kMaxQuoted)), "...\"");
  return absl::StrCat("\"", Sv(s), "\"");
}

// A finite number filling all of `s` (a leading '+' is allowed).
bool ParseNumber(std::string_view s, double* out) {
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  if (s.empty()) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size() && std::isfinite(*out);
}

absl::StatusOr<char> OneChar(std::string_view s, std::string_view what) {
  if (s.size() != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(Sv(what), " must be one character, got ", Quote(s)));
  }
  return s[0];
}

bool AllDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

void SplitWhitespace(std::string_view s, std::vector<std::string_view>* out) {
  out->clear();
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    while (i < n && (s[i] == ' ' || s[i] == '\t')) ++i;
    size_t j = i;
    while (j < n && s[j] != ' ' && s[j] != '\t') ++j;
    if (j > i) out->push_back(s.substr(i, j - i));
    i = j;
  }
}

}  // namespace

void SplitCells(std::string_view s, char delim, std::vector<std::string_view>* out) {
  out->clear();
  const char* p = s.data();
  const char* end = p + s.size();
  while (true) {
    const char* d = static_cast<const char*>(std::memchr(p, delim, end - p));
    if (d == nullptr) {
      out->emplace_back(p, end - p);
      return;
    }
    out->emplace_back(p, d - p);
    p = d + 1;
  }
}

absl::Status SplitCsvRecord(std::string_view s, char delim, char quote, bool trim, bool trim_tabs,
                            std::vector<std::string_view>* out, std::string* scratch) {
  out->clear();
  scratch->clear();
  scratch->reserve(s.size());  // views into it stay valid
  const size_t n = s.size();
  auto space = [&](char c) { return trim && (c == ' ' || (trim_tabs && c == '\t')); };
  size_t i = 0;
  while (true) {
    while (i < n && space(s[i])) ++i;
    if (quote != '\0' && i < n && s[i] == quote) {
      const size_t column = out->size() + 1;
      const size_t content = ++i;
      size_t close = std::string_view::npos;
      bool doubled = false;
      while (i < n) {
        const char* q = static_cast<const char*>(std::memchr(s.data() + i, quote, n - i));
        if (q == nullptr) break;
        const size_t at = q - s.data();
        if (at + 1 < n && s[at + 1] == quote) {
          doubled = true;
          i = at + 2;
          continue;
        }
        close = at;
        i = at + 1;
        break;
      }
      if (close == std::string_view::npos) {
        return absl::InvalidArgumentError(absl::StrFormat("column %d: unclosed quote", column));
      }
      std::string_view value = s.substr(content, close - content);
      if (doubled) {
        const size_t start = scratch->size();
        for (size_t k = 0; k < value.size(); ++k) {
          scratch->push_back(value[k]);
          if (value[k] == quote) ++k;  // the second of a pair
        }
        value = std::string_view(scratch->data() + start, scratch->size() - start);
      }
      while (i < n && space(s[i])) ++i;
      if (i < n && s[i] != delim) {
        const char* d = static_cast<const char*>(std::memchr(s.data() + i, delim, n - i));
        const size_t end = d == nullptr ? n : d - s.data();
        return absl::InvalidArgumentError(absl::StrFormat("column %d: %s after the closing quote",
                                                          column, Quote(s.substr(i, end - i))));
      }
      out->push_back(value);
      if (i >= n) return absl::OkStatus();
      ++i;
      continue;
    }
    const char* d = static_cast<const char*>(std::memchr(s.data() + i, delim, n - i));
    const size_t end = d == nullptr ? n : d - s.data();
    size_t e = end;
    while (e > i && space(s[e - 1])) --e;
    out->push_back(s.substr(i, e - i));
    if (d == nullptr) return absl::OkStatus();
    i = end + 1;
  }
}

int64_t BucketOf(double v, FeatureConfig::Bucketing bucketing) {
  if (bucketing == FeatureConfig::LOG2_SQUARED && v > 2) {
    const double l = std::log(v);
    return static_cast<int64_t>(std::floor(l * l));
  }
  return static_cast<int64_t>(std::floor(v));
}

absl::StatusOr<std::unique_ptr<SampleParser>> SampleParser::Create(const DataConfig& data) {
  std::unique_ptr<SampleParser> p(new SampleParser(data.format()));
  const DataConfig::Format format = data.format();
  switch (format) {
    case DataConfig::CSV: {
      ASSIGN_OR_RETURN(p->delimiter_, OneChar(data.delimiter(), "data.delimiter"));
      if (!data.quote().empty()) {
        ASSIGN_OR_RETURN(p->quote_, OneChar(data.quote(), "data.quote"));
        if (p->quote_ == p->delimiter_ || p->quote_ == '\n' || p->quote_ == '\r') {
          return absl::InvalidArgumentError(absl::StrCat(
              "data.quote ", Quote(data.quote()), " cannot be the delimiter or a line break"));
        }
      }
      p->trim_ = data.trim_spaces();
      p->trim_tabs_ = p->delimiter_ != '\t';
      break;
    }
    case DataConfig::CRITEO_TSV:
      p->delimiter_ = '\t';
      p->expected_columns_ = kCriteoColumns;
      break;
    case DataConfig::DIN_TEXT:
      p->delimiter_ = ';';
      p->expected_columns_ = static_cast<int>(DinColumnNames().size());
      break;
    case DataConfig::LIBSVM:
    case DataConfig::LIBFM:
      p->whitespace_ = true;
      break;
  }
  if (format != DataConfig::CSV && data.has_delimiter()) {
    ASSIGN_OR_RETURN(p->delimiter_, OneChar(data.delimiter(), "data.delimiter"));
    p->whitespace_ = false;
  }

  for (absl::string_view label : absl::StrSplit(data.label(), ',')) {
    label = absl::StripAsciiWhitespace(label);
    if (label.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("data.label ", Quote(data.label()), ": empty label column name"));
    }
    p->labels_.emplace_back(label);
  }
  if (p->labels_.empty()) return absl::InvalidArgumentError("data.label is empty");
  p->label_positive_.assign(data.label_positive().begin(), data.label_positive().end());
  p->has_threshold_ = data.has_label_threshold();
  p->threshold_ = data.label_threshold();
  if (!p->label_positive_.empty() && p->has_threshold_) {
    return absl::InvalidArgumentError(
        "data: set label_positive (string labels) or label_threshold (numeric), not both");
  }
  if (p->has_threshold_ && !std::isfinite(p->threshold_)) {
    return absl::InvalidArgumentError("data.label_threshold must be a finite number");
  }

  if (data.feature_size() == 0) {
    return absl::InvalidArgumentError("data: no features configured");
  }
  for (const FeatureConfig& f : data.feature()) {
    FieldPlan plan;
    plan.name = f.name();
    plan.kind = f.kind();
    plan.bucketing = f.bucketing();
    const std::string& table = f.table().empty() ? f.name() : f.table();
    const std::string& hash_as = f.hash_as().empty() ? table : f.hash_as();
    plan.field_hash = HashBytes(hash_as);
    plan.missing_key = MissingKey(plan.field_hash);
    plan.max_len = f.max_len();
    if (!IsSingleValued(f.kind()) && f.max_len() <= 0) {
      return absl::InvalidArgumentError(
          absl::StrFormat("feature \"%s\": max_len must be > 0, got %d", f.name(), f.max_len()));
    }
    if (f.has_separator() || format != DataConfig::DIN_TEXT) {
      ASSIGN_OR_RETURN(plan.separator, OneChar(f.separator(), absl::StrCat("feature \"", f.name(),
                                                                           "\": separator")));
    } else {
      plan.separator = ' ';
    }
    plan.column_index = f.column_index();
    plan.column = f.column().empty() ? f.name() : f.column();
    plan.resolved = -1;
    const auto& missing = f.missing_values_size() > 0 ? f.missing_values() : data.missing_values();
    if (missing.empty()) {
      for (const char* t : {"", "?", "NA", "N/A", "NULL", "null", "nan", "NaN"}) {
        plan.missing.tokens.emplace_back(t);
      }
    } else {
      plan.missing.tokens.assign(missing.begin(), missing.end());
    }
    for (const std::string& t : plan.missing.tokens) {
      if (t.empty()) continue;
      plan.missing.first_byte[static_cast<unsigned char>(t[0])] = true;
      plan.missing.max_size = std::max(plan.missing.max_size, t.size());
    }
    const bool numeric = f.kind() == FeatureConfig::NUMERIC;
    auto numeric_only = [&](const char* option) {
      return absl::InvalidArgumentError(
          absl::StrFormat("feature \"%s\": %s applies to NUMERIC features only", f.name(), option));
    };
    if (!numeric && f.scaling() != FeatureConfig::NO_SCALING) return numeric_only("scaling");
    if (!numeric && f.log_transform()) return numeric_only("log_transform");
    if (!numeric && f.missing_embedding()) return numeric_only("missing_embedding");
    plan.missing_fill = f.missing_fill();
    plan.missing_embedding = f.missing_embedding();
    plan.numeric_missing_key = NumericMissingKey(plan.field_hash);
    plan.log_transform = f.log_transform();
    if (f.scaling() != FeatureConfig::NO_SCALING) {
      const NumericStats& st = f.stats();
      if (!f.has_stats() || st.count() <= 0) {
        return absl::FailedPreconditionError(absl::StrFormat(
            "feature \"%s\": scaling %s needs the training data's statistics (feature.stats); "
            "the trainer computes them before training",
            f.name(), FeatureConfig::Scaling_Name(f.scaling())));
      }
      if (f.scaling() == FeatureConfig::STANDARD) {
        plan.shift = st.mean();
        plan.scale = st.stddev() > 0 ? 1.0 / st.stddev() : 1.0;
      } else {
        plan.shift = st.min();
        plan.scale = st.max() > st.min() ? 1.0 / (st.max() - st.min()) : 1.0;
      }
      if (!std::isfinite(plan.shift) || !std::isfinite(plan.scale)) {
        return absl::InvalidArgumentError(
            absl::StrFormat("feature \"%s\": stats are not finite", f.name()));
      }
    }
    p->fields_.push_back(std::move(plan));
  }
  p->seen_.resize(p->fields_.size());

  switch (format) {
    case DataConfig::CSV:
      break;  // resolved per file in BindHeader
    case DataConfig::CRITEO_TSV: {
      const auto& names = CriteoColumnNames();
      RETURN_IF_ERROR(p->ResolveColumns(std::vector<std::string_view>(names.begin(), names.end()),
                                        "CRITEO_TSV"));
      break;
    }
    case DataConfig::DIN_TEXT: {
      const auto& names = DinColumnNames();
      RETURN_IF_ERROR(
          p->ResolveColumns(std::vector<std::string_view>(names.begin(), names.end()), "DIN_TEXT"));
      break;
    }
    case DataConfig::LIBSVM:
    case DataConfig::LIBFM: {
      for (const std::string& label : p->labels_) {
        int head = 0;
        if (label == "label") {
          head = 0;
        } else if (AllDigits(label) && absl::SimpleAtoi(label, &head)) {
        } else {
          return absl::InvalidArgumentError(absl::StrFormat(
              "data.label \"%s\": for %s a label is \"label\" (the first column) or a column "
              "index among the leading columns",
              label, FormatName(format)));
        }
        p->label_columns_.push_back(head);
        p->head_columns_ = std::max(p->head_columns_, head + 1);
      }
      for (int i = 0; i < p->num_fields(); ++i) {
        const FieldPlan& plan = p->fields_[i];
        if (plan.column_index >= 0) {
          if (p->by_position_.size() <= static_cast<size_t>(plan.column_index)) {
            p->by_position_.resize(plan.column_index + 1);
          }
          p->by_position_[plan.column_index].push_back(i);
        } else {
          p->by_field_[plan.column].push_back(i);
        }
      }
      break;
    }
  }
  return p;
}

absl::Status SampleParser::ResolveColumns(const std::vector<std::string_view>& names,
                                          std::string_view where) {
  const bool headerless = format_ != DataConfig::CSV;
  auto find = [&](std::string_view name) -> int {
    for (size_t i = 0; i < names.size(); ++i) {
      if (names[i] == name) return static_cast<int>(i);
    }
    return -1;
  };
  auto known = [&] {
    if (format_ == DataConfig::CRITEO_TSV) return std::string("label, I1..I13, C1..C26");
    std::string all;
    for (std::string_view n : names) absl::StrAppend(&all, all.empty() ? "" : ", ", Sv(n));
    return all;
  };
  label_columns_.clear();
  for (const std::string& label : labels_) {
    int c = find(label);
    int index;
    if (c < 0 && headerless && AllDigits(label) && absl::SimpleAtoi(label, &index) &&
        index < static_cast<int>(names.size())) {
      c = index;
    }
    if (c < 0) {
      if (headerless) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "data.label: column \"%s\" is not a %s column (%s)", label, where, known()));
      }
      return absl::InvalidArgumentError(
          absl::StrFormat("%s:1: label column \"%s\" is not in the header", where, label));
    }
    label_columns_.push_back(c);
  }
  for (FieldPlan& plan : fields_) {
    if (plan.column_index >= 0) {
      if (plan.column_index >= static_cast<int>(names.size())) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "%s%s: feature \"%s\": column_index %d is out of range (%d columns)", where,
            headerless ? "" : ":1", plan.name, plan.column_index, names.size()));
      }
      plan.resolved = plan.column_index;
      continue;
    }
    plan.resolved = find(plan.column);
    if (plan.resolved < 0) {
      if (headerless) {
        return absl::InvalidArgumentError(
            absl::StrFormat("feature \"%s\": column \"%s\" is not a %s column (%s)", plan.name,
                            plan.column, where, known()));
      }
      return absl::InvalidArgumentError(
          absl::StrFormat("%s:1: column \"%s\" (feature \"%s\") is not in the header", where,
                          plan.column, plan.name));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<int> SampleParser::BindHeader(std::string_view header, std::string_view path) {
  if (format_ != DataConfig::CSV) return 0;
  if (header.size() >= 3 && std::memcmp(header.data(), "\xEF\xBB\xBF", 3) == 0) {
    header.remove_prefix(3);  // UTF-8 byte order mark
  }
  std::vector<std::string_view> names;
  std::string scratch;
  absl::Status split =
      SplitCsvRecord(header, delimiter_, quote_, trim_, trim_tabs_, &names, &scratch);
  if (!split.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(Sv(path), ":1: header: ", split.message()));
  }
  absl::Status s = ResolveColumns(names, path);
  if (!s.ok()) {
    const int previous = current_;
    current_ = -1;
    if (previous >= 0) SelectHeader(previous);  // undo the partial resolution
    return s;
  }
  Binding b;
  for (const FieldPlan& plan : fields_) b.columns.push_back(plan.resolved);
  b.labels = label_columns_;
  b.expected_columns = static_cast<int>(names.size());
  b.header.assign(names.begin(), names.end());
  bindings_.push_back(std::move(b));
  current_ = static_cast<int>(bindings_.size()) - 1;
  expected_columns_ = bindings_.back().expected_columns;
  return current_;
}

void SampleParser::SelectHeader(int id) {
  if (format_ != DataConfig::CSV || id == current_) return;
  const Binding& b = bindings_[id];
  for (size_t i = 0; i < fields_.size(); ++i) fields_[i].resolved = b.columns[i];
  label_columns_ = b.labels;
  expected_columns_ = b.expected_columns;
  current_ = id;
}

std::string_view SampleParser::ColumnName(int column) const {
  switch (format_) {
    case DataConfig::CSV:
      if (current_ >= 0 && column < static_cast<int>(bindings_[current_].header.size())) {
        return bindings_[current_].header[column];
      }
      break;
    case DataConfig::CRITEO_TSV:
      return CriteoColumnNames()[column];
    case DataConfig::DIN_TEXT:
      return DinColumnNames()[column];
    default:
      break;
  }
  return "?";
}

absl::Status SampleParser::Parse(std::string_view line, Batch* batch) {
  return IsSparse(format_) ? ParseSparse(line, batch) : ParseDelimited(line, batch);
}

absl::Status SampleParser::ParseLabel(std::string_view cell, int label, float* out) const {
  if (cell.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("label \"", labels_[label], "\" is empty"));
  }
  if (!label_positive_.empty()) {
    *out = 0;
    for (const std::string& p : label_positive_) {
      if (p == cell) *out = 1;
    }
    return absl::OkStatus();
  }
  double v;
  if (!ParseNumber(cell, &v)) {
    return absl::InvalidArgumentError(
        absl::StrCat("label \"", labels_[label], "\": expected a number, got ", Quote(cell)));
  }
  if (has_threshold_) {
    v = v >= threshold_ ? 1 : 0;
  } else if (IsSparse(format_) && v == -1) {
    v = 0;
  }
  *out = static_cast<float>(v);
  return absl::OkStatus();
}

absl::Status SampleParser::SplitRecord(std::string_view line) {
  if (quote_ != '\0' && std::memchr(line.data(), quote_, line.size()) != nullptr) {
    return SplitCsvRecord(line, delimiter_, quote_, trim_, trim_tabs_, &cells_, &unquoted_);
  }
  SplitCells(line, delimiter_, &cells_);
  if (trim_) {
    // One compare per end rules out both ' ' and '\t' in the common case.
    auto low = [](char c) { return static_cast<unsigned char>(c) <= ' '; };
    auto space = [this](char c) { return c == ' ' || (trim_tabs_ && c == '\t'); };
    for (std::string_view& c : cells_) {
      if (c.empty() || (!low(c.front()) && !low(c.back()))) continue;
      while (!c.empty() && space(c.front())) c.remove_prefix(1);
      while (!c.empty() && space(c.back())) c.remove_suffix(1);
    }
  }
  return absl::OkStatus();
}

float SampleParser::Scaled(const FieldPlan& plan, double v) const {
  if (plan.log_transform) v = v < 0 ? -std::log1p(-v) : std::log1p(v);
  return static_cast<float>((v - plan.shift) * plan.scale);
}

absl::Status SampleParser::ParseDelimited(std::string_view line, Batch* batch) {
  RETURN_IF_ERROR(SplitRecord(line));
  if (static_cast<int>(cells_.size()) != expected_columns_) {
    return absl::InvalidArgumentError(
        absl::StrFormat("expected %d columns, got %d", expected_columns_, cells_.size()));
  }
  const int n = batch->size;
  for (int l = 0; l < num_labels(); ++l) {
    float v;
    absl::Status s = ParseLabel(cells_[label_columns_[l]], l, &v);
    if (!s.ok()) {
      batch->Truncate(n);
      return s;
    }
    batch->labels.push_back(v);
  }
  for (int i = 0; i < num_fields(); ++i) {
    const FieldPlan& plan = fields_[i];
    FieldBatch& out = batch->fields[i];
    absl::Status s = AppendCell(plan, cells_[plan.resolved], &out);
    if (!s.ok()) {
      batch->Truncate(n);
      return s;
    }
    out.offsets.push_back(static_cast<int32_t>(out.keys.size()));
  }
  ++batch->size;
  return absl::OkStatus();
}

absl::Status SampleParser::AppendCell(const FieldPlan& plan, std::string_view cell,
                                      FieldBatch* out) {
  switch (plan.kind) {
    case FeatureConfig::CATEGORICAL:
      out->keys.push_back(plan.missing.Contains(cell) ? plan.missing_key
                                                      : FeatureKey(plan.field_hash, cell));
      return absl::OkStatus();
    case FeatureConfig::NUMERIC:
    case FeatureConfig::BUCKETIZED: {
      const bool missing = plan.missing.Contains(cell);
      double v = 0;
      if (!missing && !ParseNumber(cell, &v)) {
        return absl::InvalidArgumentError(absl::StrCat("column \"", Sv(ColumnName(plan.resolved)),
                                                       "\": expected a number, got ", Quote(cell)));
      }
      if (plan.kind == FeatureConfig::NUMERIC) {
        if (missing && plan.missing_embedding) {
          out->keys.push_back(plan.numeric_missing_key);
          out->values.push_back(1);
        } else {
          out->keys.push_back(plan.missing_key);
          out->values.push_back(missing ? plan.missing_fill : Scaled(plan, v));
        }
      } else if (missing) {
        out->keys.push_back(plan.missing_key);
      } else {
        char buf[24];
        auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), BucketOf(v, plan.bucketing));
        out->keys.push_back(FeatureKey(plan.field_hash, std::string_view(buf, end - buf)));
      }
      return absl::OkStatus();
    }
    case FeatureConfig::MULTI_VALUED:
    case FeatureConfig::SEQUENCE: {
      if (plan.missing.Contains(cell)) return absl::OkStatus();
      // Walk back from the end so that only the last max_len items are hashed.
      items_.clear();
      size_t end = cell.size();
      while (end > 0 && static_cast<int>(items_.size()) < plan.max_len) {
        const size_t sep = cell.rfind(plan.separator, end - 1);
        const size_t start = sep == std::string_view::npos ? 0 : sep + 1;
        if (end > start) items_.push_back(cell.substr(start, end - start));
        if (sep == std::string_view::npos) break;
        end = sep;
      }
      for (auto it = items_.rbegin(); it != items_.rend(); ++it) {
        out->keys.push_back(FeatureKey(plan.field_hash, *it));
      }
      return absl::OkStatus();
    }
  }
  return absl::OkStatus();
}

absl::Status SampleParser::AppendSparseToken(const FieldPlan& plan, std::string_view idx,
                                             std::string_view val, FieldBatch* out) {
  switch (plan.kind) {
    case FeatureConfig::CATEGORICAL:
    case FeatureConfig::MULTI_VALUED:
    case FeatureConfig::SEQUENCE:
      out->keys.push_back(FeatureKey(plan.field_hash, idx));
      return absl::OkStatus();
    case FeatureConfig::NUMERIC:
    case FeatureConfig::BUCKETIZED: {
      double v = 1;
      if (!val.empty() && !ParseNumber(val, &v)) {
        return absl::InvalidArgumentError(
            absl::StrCat("feature \"", plan.name, "\": expected a number, got ", Quote(val)));
      }
      if (plan.kind == FeatureConfig::NUMERIC) {
        out->keys.push_back(plan.missing_key);
        out->values.push_back(Scaled(plan, v));
      } else {
        char buf[24];
        auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), BucketOf(v, plan.bucketing));
        out->keys.push_back(FeatureKey(plan.field_hash, std::string_view(buf, end - buf)));
      }
      return absl::OkStatus();
    }
  }
  return absl::OkStatus();
}

absl::Status SampleParser::ParseSparse(std::string_view line, Batch* batch) {
  if (whitespace_) {
    SplitWhitespace(line, &cells_);
  } else {
    SplitCells(line, delimiter_, &cells_);
  }
  int head = 0;
  while (head < static_cast<int>(cells_.size()) &&
         cells_[head].find(':') == std::string_view::npos) {
    ++head;
  }
  if (head < head_columns_) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "expected %d leading column(s) (labels) before the features, got %d", head_columns_, head));
  }
  const int n = batch->size;
  auto fail = [&](absl::Status s) {
    batch->Truncate(n);
    return s;
  };
  for (int l = 0; l < num_labels(); ++l) {
    float v;
    absl::Status s = ParseLabel(cells_[label_columns_[l]], l, &v);
    if (!s.ok()) return fail(std::move(s));
    batch->labels.push_back(v);
  }
  std::fill(seen_.begin(), seen_.end(), 0);
  const bool libfm = format_ == DataConfig::LIBFM;
  for (int t = head; t < static_cast<int>(cells_.size()); ++t) {
    std::string_view tok = cells_[t];
    if (tok.empty()) continue;  // doubled or trailing delimiter
    const size_t c1 = tok.find(':');
    std::string_view field, idx, val;
    bool ok = c1 != std::string_view::npos && c1 > 0;
    if (ok && libfm) {
      field = tok.substr(0, c1);
      std::string_view rest = tok.substr(c1 + 1);
      const size_t c2 = rest.find(':');
      idx = rest.substr(0, c2);
      if (c2 != std::string_view::npos) val = rest.substr(c2 + 1);
      ok = !idx.empty() && (c2 == std::string_view::npos || !val.empty());
    } else if (ok) {
      field = idx = tok.substr(0, c1);
      val = tok.substr(c1 + 1);
      ok = !val.empty();
    }
    double v;
    if (ok && !val.empty() && !ParseNumber(val, &v)) ok = false;
    if (!ok) {
      return fail(absl::InvalidArgumentError(
          absl::StrFormat("token %d %s: expected %s", t + 1, Quote(tok),
                          libfm ? "field:idx or field:idx:val" : "idx:val")));
    }
    auto apply = [&](int f) -> absl::Status {
      const FieldPlan& plan = fields_[f];
      if (IsSingleValued(plan.kind)) {
        if (seen_[f]) return absl::OkStatus();  // the first token of a field wins
        seen_[f] = 1;
      }
      return AppendSparseToken(plan, idx, val, &batch->fields[f]);
    };
    const size_t ordinal = t - head;
    if (ordinal < by_position_.size()) {
      for (int f : by_position_[ordinal]) {
        absl::Status s = apply(f);
        if (!s.ok()) return fail(std::move(s));
      }
    }
    if (!by_field_.empty()) {
      auto it = by_field_.find(Sv(field));
      if (it != by_field_.end()) {
        for (int f : it->second) {
          absl::Status s = apply(f);
          if (!s.ok()) return fail(std::move(s));
        }
      }
    }
  }
  for (int f = 0; f < num_fields(); ++f) {
    const FieldPlan& plan = fields_[f];
    FieldBatch& out = batch->fields[f];
    if (IsSingleValued(plan.kind)) {
      if (!seen_[f]) {
        if (plan.kind == FeatureConfig::NUMERIC && plan.missing_embedding) {
          out.keys.push_back(plan.numeric_missing_key);
          out.values.push_back(1);
        } else {
          out.keys.push_back(plan.missing_key);
          if (plan.kind == FeatureConfig::NUMERIC) out.values.push_back(plan.missing_fill);
        }
      }
    } else {
      const int begin = out.offsets.back();
      const int count = static_cast<int>(out.keys.size()) - begin;
      if (count > plan.max_len) {
        out.keys.erase(out.keys.begin() + begin, out.keys.begin() + begin + (count - plan.max_len));
      }
    }
    out.offsets.push_back(static_cast<int32_t>(out.keys.size()));
  }
  ++batch->size;
  return absl::OkStatus();
}

bool SampleParser::NeedsNumericStats(const DataConfig& data) {
  for (const FeatureConfig& f : data.feature()) {
    if (f.kind() == FeatureConfig::NUMERIC && f.scaling() != FeatureConfig::NO_SCALING) return true;
  }
  return false;
}

void MergeNumericMoments(std::vector<NumericMoments>* a, const std::vector<NumericMoments>& b) {
  for (size_t i = 0; i < a->size() && i < b.size(); ++i) {
    NumericMoments& x = (*a)[i];
    const NumericMoments& y = b[i];
    if (y.count == 0) continue;
    x.min = x.count == 0 ? y.min : std::min(x.min, y.min);
    x.max = x.count == 0 ? y.max : std::max(x.max, y.max);
    x.count += y.count;
    x.sum += y.sum;
    x.sum_squares += y.sum_squares;
  }
}

absl::Status SetNumericStats(const std::vector<NumericMoments>& moments, DataConfig* data) {
  for (int i = 0; i < data->feature_size() && i < static_cast<int>(moments.size()); ++i) {
    FeatureConfig* f = data->mutable_feature(i);
    if (f->kind() != FeatureConfig::NUMERIC || f->scaling() == FeatureConfig::NO_SCALING) continue;
    const NumericMoments& m = moments[i];
    if (m.count == 0) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "feature \"%s\": no value in the training data to compute its scaling from", f->name()));
    }
    const double mean = m.sum / m.count;
    const double variance = std::max(0.0, m.sum_squares / m.count - mean * mean);
    NumericStats* st = f->mutable_stats();
    st->set_count(m.count);
    st->set_mean(mean);
    st->set_stddev(std::sqrt(variance));
    st->set_min(m.min);
    st->set_max(m.max);
  }
  return absl::OkStatus();
}

}  // namespace ctrps
