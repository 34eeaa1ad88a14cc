#include "common/checkpoint_manifest.h"

#include <filesystem>
#include <fstream>
#include <string>

#include "gtest/gtest.h"
#include "ps/file_size_limit_for_test.h"

namespace ctrps {
namespace {

namespace fs = std::filesystem;

std::string FreshDir(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "/checkpoint_manifest_test_" + name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

CheckpointManifest ManifestOfTables(int tables) {
  CheckpointManifest m;
  m.set_global_step(7);
  m.set_num_servers(2);
  for (int t = 0; t < tables; ++t) {
    CheckpointTable* ct = m.add_table();
    ct->set_name("table_" + std::to_string(t));
    ct->set_id(t);
    ct->set_dim(16);
  }
  return m;
}

TEST(CheckpointManifestTest, WriteThenReadRoundTrips) {
  const std::string dir = FreshDir("round_trip");
  ASSERT_TRUE(WriteCheckpointManifest(dir, ManifestOfTables(2)).ok());
  auto read = ReadCheckpointManifest(dir);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->global_step(), 7u);
  EXPECT_EQ(read->table_size(), 2);
}

TEST(CheckpointManifestTest, ManifestWriteOnAFullDiskIsResourceExhaustedAndChangesNothing) {
  const std::string dir = FreshDir("full_disk");
  ASSERT_TRUE(WriteCheckpointManifest(dir, ManifestOfTables(1)).ok());
  const std::string path = dir + "/" + kManifestName;
  const std::string before = ReadAll(path);
  absl::Status status;
  {
    ScopedFileSizeLimit limit(before.size() + 16);
    ASSERT_TRUE(limit.ok());
    status = WriteCheckpointManifest(dir, ManifestOfTables(100));
  }
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
  EXPECT_NE(status.message().find(path + ".tmp"), std::string::npos) << status;
  EXPECT_EQ(ReadAll(path), before);
  EXPECT_FALSE(fs::exists(path + ".tmp"));
}

TEST(CheckpointManifestTest, WriteIntoAMissingDirectoryIsNotFound) {
  const std::string dir = FreshDir("missing") + "/no/such/dir";
  const absl::Status status = WriteFileAtomically(dir + "/f", "x");
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound) << status;
  EXPECT_NE(status.message().find(dir + "/f.tmp: cannot create"), std::string::npos) << status;
}

}  // namespace
}  // namespace ctrps
