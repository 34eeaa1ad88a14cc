// Helpers for the worker/data tests only.
#ifndef CTRPS_WORKER_DATA_DATA_TEST_UTIL_H_
#define CTRPS_WORKER_DATA_DATA_TEST_UTIL_H_

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/proto/config.pb.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "worker/data/line_reader.h"

#ifndef CTRPS_SHARED_DATA_DIR
#error "CTRPS_SHARED_DATA_DIR must point at the shared data folder (../shared/data)"
#endif

namespace ctrps {
namespace testing_util {

// A DataConfig from text format; fails the test on a syntax error.
inline DataConfig ParseData(const std::string& text) {
  DataConfig data;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &data)) << text;
  return data;
}

// The path of a file under the shared data folder.
inline std::string SharedPath(const std::string& relative) {
  return std::string(CTRPS_SHARED_DATA_DIR) + "/" + relative;
}

// Use as `ASSERT_SHARED_FILE(path);`: fails the test, naming the file, when a
// shared data file is missing.
#define ASSERT_SHARED_FILE(path)                     \
  ASSERT_TRUE(std::filesystem::exists(path))         \
      << "shared test data file missing: " << (path) \
      << " (tests read ../shared/data relative to the repo root; see /work/shared/data/README.md)"

// A fresh directory under the test temp dir, removed when the process exits.
inline std::string NewTempDir() {
  static std::atomic<int> counter{0};
  static std::vector<std::string>* const made = [] {
    auto* v = new std::vector<std::string>;
    std::atexit([] {
      std::error_code ignored;
      for (const std::string& d : *made) std::filesystem::remove_all(d, ignored);
    });
    return v;
  }();
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::filesystem::path dir =
      std::filesystem::path(::testing::TempDir()) /
      (std::string("ctrps_data_") + info->test_suite_name() + "_" + info->name() + "_" +
       std::to_string(::getpid()) + "_" + std::to_string(counter++));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  made->push_back(dir.string());
  return dir.string();
}

inline std::string WriteFile(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary);
  out << contents;
  return path;
}

inline std::vector<std::string> ReadLines(const std::string& path) {
  std::vector<std::string> lines;
  auto reader = LineReader::Open(path);
  EXPECT_TRUE(reader.ok()) << reader.status();
  if (!reader.ok()) return lines;
  std::string_view line;
  while (true) {
    auto more = (*reader)->Next(&line);
    EXPECT_TRUE(more.ok()) << more.status();
    if (!more.ok() || !*more) break;
    lines.emplace_back(line);
  }
  return lines;
}

}  // namespace testing_util
}  // namespace ctrps

#endif  // CTRPS_WORKER_DATA_DATA_TEST_UTIL_H_
