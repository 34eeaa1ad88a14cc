#include "common/status.h"

#include <cerrno>

#include "gtest/gtest.h"

namespace ctrps {
namespace {

TEST(ErrnoErrorTest, AFullDiskIsResourceExhaustedNotUnavailable) {
  for (int err : {ENOSPC, EDQUOT, EFBIG}) {
    EXPECT_EQ(ErrnoError("f", "write failed", err).code(), absl::StatusCode::kResourceExhausted)
        << err;
  }
}

TEST(ErrnoErrorTest, OtherErrorsKeepAbslsMapping) {
  EXPECT_EQ(ErrnoError("f", "open", ENOENT).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ErrnoError("f", "open", EACCES).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ErrnoError("f", "read", EAGAIN).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ErrnoError("f", "read", EIO).code(), absl::ErrnoToStatusCode(EIO));
}

TEST(ErrnoErrorTest, NamesThePlaceTheCallAndTheError) {
  EXPECT_EQ(ErrnoError("/d/x", "cannot create", ENOENT).message(),
            std::string("/d/x: cannot create: ") + std::strerror(ENOENT));
}

TEST(ErrnoErrorTest, AFailureWithoutErrnoIsStillAnError) {
  EXPECT_EQ(ErrnoError("f", "read", 0).code(), absl::StatusCode::kUnknown);
}

}  // namespace
}  // namespace ctrps
