// Range checks declared in the schema: a numeric field carrying a `(range)`
// option (common/proto/config.proto) must hold values inside it. Each field's
// rule is written once, beside the field; the config loader reports the
// first violation with its file:line, and CreateModel checks configs that
// were built in code the same way.
#ifndef CTRPS_COMMON_FIELD_RANGES_H_
#define CTRPS_COMMON_FIELD_RANGES_H_

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"

namespace ctrps {

struct FieldRangeViolation {
  // From `message` down to the field: (field name, element index or -1).
  std::vector<std::pair<std::string, int>> path;
  // "<dotted path> must be in [0, 1), got 1.5"; the dotted path starts with
  // the prefix given to FindFieldRangeViolation.
  std::string message;
};

// The first field of `message` or of its nested messages (in field-number
// order, elements in order) whose value lies outside its declared range;
// nullopt if there is none. Unset optional fields are checked at their
// default. `prefix` ("model") starts the dotted path in the message.
std::optional<FieldRangeViolation> FindFieldRangeViolation(const google::protobuf::Message& message,
                                                           absl::string_view prefix);

// InvalidArgument with the violation's message, or OK.
absl::Status CheckFieldRanges(const google::protobuf::Message& message, absl::string_view prefix);

}  // namespace ctrps

#endif  // CTRPS_COMMON_FIELD_RANGES_H_
