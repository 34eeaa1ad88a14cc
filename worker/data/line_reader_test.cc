#include "worker/data/line_reader.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "worker/data/compress.h"
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

std::vector<std::string> ReadRecords(const std::string& path, size_t buffer,
                                     std::vector<int64_t>* first_lines = nullptr) {
  auto r = LineReader::Open(path, buffer);
  EXPECT_TRUE(r.ok()) << r.status();
  (*r)->set_quote('"');
  std::vector<std::string> records;
  std::string_view record;
  while (true) {
    auto more = (*r)->Next(&record);
    EXPECT_TRUE(more.ok()) << more.status();
    if (!more.ok() || !*more) break;
    records.emplace_back(record);
    if (first_lines != nullptr) first_lines->push_back((*r)->record_first_line());
  }
  return records;
}

TEST(LineReaderTest, GzipAndZstdFilesReadAsTheirText) {
  const std::string dir = NewTempDir();
  std::string text;
  std::vector<std::string> expected;
  for (int i = 0; i < 20000; ++i) {
    expected.push_back("line " + std::to_string(i) + std::string(i % 50, 'x'));
    text += expected.back() + "\n";
  }
  const std::string gz = WriteFile(dir + "/a.csv.gz", GzipBytes(text));
  const std::string zst = WriteFile(dir + "/a.csv.zst", ZstdBytes(text));
  // Compression is told by the bytes, not the name.
  const std::string disguised = WriteFile(dir + "/a.csv", GzipBytes(text));
  for (size_t buffer : {16, 4096, 1 << 20}) {
    EXPECT_EQ(ReadAll(gz, buffer), expected) << buffer;
    EXPECT_EQ(ReadAll(zst, buffer), expected) << buffer;
    EXPECT_EQ(ReadAll(disguised, buffer), expected) << buffer;
  }
  EXPECT_EQ((*LineReader::Open(gz))->compression(), Compression::kGzip);
  EXPECT_EQ((*LineReader::Open(zst))->compression(), Compression::kZstd);
}

TEST(LineReaderTest, ConcatenatedMembersAndFramesReadAsOneStream) {
  const std::string dir = NewTempDir();
  const std::string gz = WriteFile(dir + "/b.gz", GzipBytes("a\nb\n") + GzipBytes("c\nd"));
  const std::string zst = WriteFile(dir + "/b.zst", ZstdBytes("a\nb\n") + ZstdBytes("c\nd"));
  const std::vector<std::string> expected{"a", "b", "c", "d"};
  EXPECT_EQ(ReadAll(gz, 16), expected);
  EXPECT_EQ(ReadAll(zst, 16), expected);
}

TEST(LineReaderTest, TruncatedCompressedFilesAreDataLoss) {
  const std::string dir = NewTempDir();
  std::string text;
  for (int i = 0; i < 5000; ++i) text += "row " + std::to_string(i * 7919) + "\n";
  for (const std::string& bytes : {GzipBytes(text), ZstdBytes(text)}) {
    const std::string path = WriteFile(dir + "/t", bytes.substr(0, bytes.size() / 2));
    auto r = LineReader::Open(path, 4096);
    ASSERT_TRUE(r.ok());
    std::string_view line;
    absl::Status status;
    while (true) {
      auto more = (*r)->Next(&line);
      if (!more.ok()) {
        status = more.status();
        break;
      }
      ASSERT_TRUE(*more) << "a truncated stream read as a clean end";
    }
    EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
    EXPECT_NE(status.message().find(path), std::string::npos) << status;
  }
}

TEST(LineReaderTest, QuotedNewlinesStayInsideTheRecord) {
  const std::string dir = NewTempDir();
  const std::string path =
      WriteFile(dir + "/q.csv", "a,b\r\n1,\"x\ny\"\r\n2,\"p \"\"q\"\"\n\n\nr\"\n3,z\n");
  for (size_t buffer : {16, 64, 1 << 20}) {
    std::vector<int64_t> first;
    EXPECT_EQ(ReadRecords(path, buffer, &first),
              (std::vector<std::string>{"a,b", "1,\"x\ny\"", "2,\"p \"\"q\"\"\n\n\nr\"", "3,z"}))
        << buffer;
    EXPECT_EQ(first, (std::vector<int64_t>{1, 2, 4, 8})) << buffer;
  }
}

TEST(LineReaderTest, AnUnclosedQuoteCostsOneLine) {
  const std::string dir = NewTempDir();
  // At the end of the file.
  std::vector<int64_t> first;
  EXPECT_EQ(ReadRecords(WriteFile(dir + "/u.csv", "1,\"oops\n2,b\n3,c\n"), 16, &first),
            (std::vector<std::string>{"1,\"oops", "2,b", "3,c"}));
  EXPECT_EQ(first, (std::vector<int64_t>{1, 2, 3}));
  // Far from the end: the record gives up after kMaxRecordLines lines.
  std::string text = "x,\"open\n";
  for (int i = 0; i < 3 * LineReader::kMaxRecordLines; ++i) text += std::to_string(i) + ",v\n";
  text += "last,\"closed\"\n";
  const auto records = ReadRecords(WriteFile(dir + "/v.csv", text), 64);
  ASSERT_EQ(records.size(), 3u * LineReader::kMaxRecordLines + 2);
  EXPECT_EQ(records[0], "x,\"open");
  EXPECT_EQ(records[1], "0,v");
  EXPECT_EQ(records.back(), "last,\"closed\"");
}

TEST(LineReaderTest, MissingFileIsNotFound) {
  auto r = LineReader::Open("/nonexistent/dir/train.csv");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(r.status().message(), "/nonexistent/dir/train.csv: no such file");
}

}  // namespace
}  // namespace ctrps
