#include "common/field_ranges.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/proto/config.pb.h"

namespace ctrps {
namespace {

namespace pb = google::protobuf;

// The value of element `index` (-1: the singular field) as a double, or
// nullopt for a non-numeric field.
std::optional<double> NumericValue(const pb::Message& m, const pb::FieldDescriptor* f, int index) {
  const pb::Reflection* r = m.GetReflection();
  const bool rep = index >= 0;
  switch (f->cpp_type()) {
    case pb::FieldDescriptor::CPPTYPE_INT32:
      return rep ? r->GetRepeatedInt32(m, f, index) : r->GetInt32(m, f);
    case pb::FieldDescriptor::CPPTYPE_INT64:
      return static_cast<double>(rep ? r->GetRepeatedInt64(m, f, index) : r->GetInt64(m, f));
    case pb::FieldDescriptor::CPPTYPE_UINT32:
      return rep ? r->GetRepeatedUInt32(m, f, index) : r->GetUInt32(m, f);
    case pb::FieldDescriptor::CPPTYPE_UINT64:
      return static_cast<double>(rep ? r->GetRepeatedUInt64(m, f, index) : r->GetUInt64(m, f));
    case pb::FieldDescriptor::CPPTYPE_FLOAT:
      return rep ? r->GetRepeatedFloat(m, f, index) : r->GetFloat(m, f);
    case pb::FieldDescriptor::CPPTYPE_DOUBLE:
      return rep ? r->GetRepeatedDouble(m, f, index) : r->GetDouble(m, f);
    default:
      return std::nullopt;
  }
}

bool InRange(double v, const FieldRange& range) {
  if (std::isnan(v)) return false;
  if (range.has_min() && v < range.min()) return false;
  if (range.has_max() && v > range.max()) return false;
  if (range.has_below() && v >= range.below()) return false;
  return true;
}

std::string Describe(const FieldRange& range) {
  if (range.has_min() && (range.has_max() || range.has_below())) {
    return range.has_max() ? absl::StrCat("in [", range.min(), ", ", range.max(), "]")
                           : absl::StrCat("in [", range.min(), ", ", range.below(), ")");
  }
  if (range.has_min()) return absl::StrCat(">= ", range.min());
  if (range.has_max()) return absl::StrCat("<= ", range.max());
  return absl::StrCat("< ", range.below());
}

bool Find(const pb::Message& m, const std::string& prefix,
          std::vector<std::pair<std::string, int>>* path, std::string* message) {
  const pb::Descriptor* d = m.GetDescriptor();
  const pb::Reflection* r = m.GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    const pb::FieldDescriptor* f = d->field(i);
    const std::string name = prefix.empty() ? f->name() : absl::StrCat(prefix, ".", f->name());
    const int count = f->is_repeated() ? r->FieldSize(m, f) : 1;
    if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
      for (int k = 0; k < count; ++k) {
        if (!f->is_repeated() && !r->HasField(m, f)) break;
        const int index = f->is_repeated() ? k : -1;
        const pb::Message& sub =
            f->is_repeated() ? r->GetRepeatedMessage(m, f, k) : r->GetMessage(m, f);
        path->emplace_back(f->name(), index);
        const std::string sub_prefix = index >= 0 ? absl::StrCat(name, "[", index, "]") : name;
        if (Find(sub, sub_prefix, path, message)) return true;
        path->pop_back();
      }
      continue;
    }
    if (!f->options().HasExtension(range)) continue;
    const FieldRange& want = f->options().GetExtension(range);
    for (int k = 0; k < count; ++k) {
      const int index = f->is_repeated() ? k : -1;
      const std::optional<double> v = NumericValue(m, f, index);
      if (!v.has_value() || InRange(*v, want)) continue;
      path->emplace_back(f->name(), index);
      *message = absl::StrCat(name, index >= 0 ? absl::StrCat("[", index, "]") : "", " must be ",
                              Describe(want), ", got ", *v);
      return true;
    }
  }
  return false;
}

}  // namespace

std::optional<FieldRangeViolation> FindFieldRangeViolation(const pb::Message& message,
                                                           absl::string_view prefix) {
  FieldRangeViolation v;
  if (!Find(message, std::string(prefix), &v.path, &v.message)) return std::nullopt;
  return v;
}

absl::Status CheckFieldRanges(const pb::Message& message, absl::string_view prefix) {
  std::optional<FieldRangeViolation> v = FindFieldRangeViolation(message, prefix);
  if (!v.has_value()) return absl::OkStatus();
  return absl::InvalidArgumentError(v->message);
}

}  // namespace ctrps
