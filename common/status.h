// Status helpers shared by every library. Errors are absl::Status; these
// macros keep call sites short without hiding the control flow.
#ifndef CTRPS_COMMON_STATUS_H_
#define CTRPS_COMMON_STATUS_H_

#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

#define CTRPS_CONCAT_INNER_(a, b) a##b
#define CTRPS_CONCAT_(a, b) CTRPS_CONCAT_INNER_(a, b)

// Returns from the enclosing function if `expr` (an absl::Status) is not OK.
#define RETURN_IF_ERROR(expr)                      \
  do {                                             \
    ::absl::Status ctrps_status_ = (expr);         \
    if (!ctrps_status_.ok()) return ctrps_status_; \
  } while (0)

// `ASSIGN_OR_RETURN(auto x, Foo());` declares/assigns x from a StatusOr or
// returns its status.
#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL_(CTRPS_CONCAT_(ctrps_statusor_, __LINE__), lhs, expr)
#define ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                           \
  if (!tmp.ok()) return tmp.status();          \
  lhs = std::move(tmp).value()

namespace ctrps {

// The code of a system call that failed with errno `err`: absl::ErrnoToStatus's
// (ENOENT NotFound, EACCES PermissionDenied, EINTR and EAGAIN Unavailable,
// ...), except that a full disk, a quota or a file-size limit (ENOSPC,
// EDQUOT, EFBIG) is ResourceExhausted: retrying the same write does not
// help until space is made.
inline absl::StatusCode ErrnoCode(int err) {
  if (err == 0) return absl::StatusCode::kUnknown;  // a failure that set no errno
  if (err == ENOSPC || err == EDQUOT || err == EFBIG) return absl::StatusCode::kResourceExhausted;
  return absl::ErrnoToStatusCode(err);
}

// "<where>: <what>: <strerror(err)>" with ErrnoCode(err), for a failed system
// call on the file or resource `where`. Pass err when a call in between
// (close, unlink) may have changed errno. The one way to turn a failed
// system call into a status, so that a full disk is never Unavailable.
inline absl::Status ErrnoError(absl::string_view where, absl::string_view what, int err = errno) {
  return absl::Status(ErrnoCode(err), absl::StrCat(where, ": ", what, ": ", std::strerror(err)));
}

}  // namespace ctrps

#endif  // CTRPS_COMMON_STATUS_H_
