#include "worker/data/line_reader.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "worker/data/data_test_util.h"

namespace ctrps {
namespace {

using testing_util::NewTempDir;
using testing_util::WriteFile;

std::vector<std::string> ReadAll(const std::string& path, size_t buffer) {
  auto r = LineReader::Open(path, buffer);
  EXPECT_TRUE(r.ok()) << r.status();
  std::vector<std::string> lines;
  std::string_view line;
  while (true) {
    auto more = (*r)->Next(&line);
    EXPECT_TRUE(more.ok());
    if (!*more) break;
    lines.emplace_back(line);
  }
  EXPECT_EQ((*r)->lines_read(), static_cast<int64_t>(lines.size()));
  return lines;
}

TEST(LineReaderTest, SplitsLinesAcrossBufferRefills) {
  const std::string dir = NewTempDir();
  std::string text;
  std::vector<std::string> expected;
  for (int i = 0; i < 500; ++i) {
    expected.push_back(std::string(i % 37, 'a' + i % 26) + std::to_string(i));
    text += expected.back() + (i % 3 == 0 ? "\r\n" : "\n");
  }
  const std::string path = WriteFile(dir + "/a.txt", text);
  for (size_t buffer : {16, 17, 64, 1000, 1 << 20}) {
    EXPECT_EQ(ReadAll(path, buffer), expected) << "buffer " << buffer;
  }
}

TEST(LineReaderTest, LastLineWithoutNewlineAndEmptyLines) {
  const std::string dir = NewTempDir();
  const std::string path = WriteFile(dir + "/b.txt", "x\n\n\ny");
  EXPECT_EQ(ReadAll(path, 16), (std::vector<std::string>{"x", "", "", "y"}));
  EXPECT_TRUE(ReadAll(WriteFile(dir + "/empty.txt", ""), 16).empty());
}

TEST(LineReaderTest, LongLinesGrowTheBuffer) {
  const std::string dir = NewTempDir();
  const std::string long_line(100000, 'z');
  const std::string path = WriteFile(dir + "/c.txt", "a\n" + long_line + "\nb\n");
  EXPECT_EQ(ReadAll(path, 16), (std::vector<std::string>{"a", long_line, "b"}));
}

TEST(LineReaderTest, SkipToCountsLines) {
  const std::string dir = NewTempDir();
  const std::string path = WriteFile(dir + "/d.txt", "0\n1\n2\n3\n");
  auto r = LineReader::Open(path, 16);
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(*(*r)->SkipTo(2));
  std::string_view line;
  ASSERT_TRUE(*(*r)->Next(&line));
  EXPECT_EQ(line, "2");
  EXPECT_EQ((*r)->lines_read(), 3);
  EXPECT_FALSE(*(*r)->SkipTo(10));
}

TEST(LineReaderTest, MissingFileIsNotFound) {
  auto r = LineReader::Open("/nonexistent/dir/train.csv");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(r.status().message(), "/nonexistent/dir/train.csv: no such file");
}

}  // namespace
}  // namespace ctrps
