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
  SplitCells(header, delimiter_, &names);
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
  double v;
  if (!ParseNumber(cell, &v)) {
    return absl::InvalidArgumentError(
        absl::StrCat("label \"", labels_[label], "\": expected a number, got ", Quote(cell)));
  }
  if (IsSparse(format_) && v == -1) v = 0;
  *out = static_cast<float>(v);
  return absl::OkStatus();
}

absl::Status SampleParser::ParseDelimited(std::string_view line, Batch* batch) {
  SplitCells(line, delimiter_, &cells_);
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
      out->keys.push_back(cell.empty() ? plan.missing_key : FeatureKey(plan.field_hash, cell));
      return absl::OkStatus();
    case FeatureConfig::NUMERIC:
    case FeatureConfig::BUCKETIZED: {
      double v = 0;
      if (!cell.empty() && !ParseNumber(cell, &v)) {
        return absl::InvalidArgumentError(absl::StrCat("column \"", Sv(ColumnName(plan.resolved)),
                                                       "\": expected a number, got ", Quote(cell)));
      }
      if (plan.kind == FeatureConfig::NUMERIC) {
        out->keys.push_back(plan.missing_key);
        out->values.push_back(static_cast<float>(v));
      } else if (cell.empty()) {
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
        out->values.push_back(static_cast<float>(v));
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
        out.keys.push_back(plan.missing_key);
        if (plan.kind == FeatureConfig::NUMERIC) out.values.push_back(0);
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

}  // namespace ctrps
