#include "ps/kv_store.h"

#include <cerrno>
#include <cstring>

#include "gtest/gtest.h"
#include "rocksdb/status.h"

namespace ctrps {
namespace {

TEST(FromRocksTest, CodesTellTheCallerWhetherToRetry) {
  EXPECT_TRUE(FromRocks(rocksdb::Status::OK(), "x").ok());
  EXPECT_EQ(FromRocks(rocksdb::Status::Corruption("bad block"), "read").code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(FromRocks(rocksdb::Status::NoSpace("write"), "w").code(),
            absl::StatusCode::kResourceExhausted);
  // RocksDB's IOError for a quota or a file-size limit carries strerror text.
  for (int err : {ENOSPC, EDQUOT, EFBIG}) {
    const absl::Status s =
        FromRocks(rocksdb::Status::IOError("While appending to file: 000012.sst", std::strerror(err)),
                  "rocksdb write in /ckpt");
    EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
    EXPECT_NE(s.message().find("rocksdb write in /ckpt"), std::string::npos) << s;
  }
  EXPECT_EQ(FromRocks(rocksdb::Status::IOError("open", std::strerror(EACCES)), "o").code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(FromRocks(rocksdb::Status::IOError("lock held"), "o").code(),
            absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace ctrps
