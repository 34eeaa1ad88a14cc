// Status helpers shared by every library. Errors are absl::Status; these
// macros keep call sites short without hiding the control flow.
#ifndef CTRPS_COMMON_STATUS_H_
#define CTRPS_COMMON_STATUS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define CTRPS_CONCAT_INNER_(a, b) a##b
#define CTRPS_CONCAT_(a, b) CTRPS_CONCAT_INNER_(a, b)

// Returns from the enclosing function if `expr` (an absl::Status) is not OK.
#define RETURN_IF_ERROR(expr)                         \
  do {                                                \
    ::absl::Status ctrps_status_ = (expr);            \
    if (!ctrps_status_.ok()) return ctrps_status_;    \
  } while (0)

// `ASSIGN_OR_RETURN(auto x, Foo());` declares/assigns x from a StatusOr or
// returns its status.
#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL_(CTRPS_CONCAT_(ctrps_statusor_, __LINE__), lhs, expr)
#define ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                           \
  if (!tmp.ok()) return tmp.status();          \
  lhs = std::move(tmp).value()

#endif  // CTRPS_COMMON_STATUS_H_
