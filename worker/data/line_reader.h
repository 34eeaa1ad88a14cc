// Reads a text file line by line through one large buffer (no per-line
// allocation, no iostreams).
#ifndef CTRPS_WORKER_DATA_LINE_READER_H_
#define CTRPS_WORKER_DATA_LINE_READER_H_

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ctrps {

class LineReader {
 public:
  static constexpr size_t kDefaultBufferSize = 4 << 20;

  // Opens `path`. NotFound (`<path>: no such file`); otherwise the code of
  // the OS error (ErrnoError: PermissionDenied, ...).
  static absl::StatusOr<std::unique_ptr<LineReader>> Open(const std::string& path,
                                                          size_t buffer_size = kDefaultBufferSize);
  ~LineReader();
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  // Sets *line to the next line without its "\n" (or "\r\n") and returns
  // true; false at the end of the file. *line stays valid until the next
  // call. A last line without a newline is returned too. Lines longer than the
  // buffer grow it. On a read error the code of its errno (ErrnoError).
  absl::StatusOr<bool> Next(std::string_view* line);

  // Skips lines until `lines_read() == line` (or the end of the file); false
  // if the file ended first.
  absl::StatusOr<bool> SkipTo(int64_t line);

  // Lines returned or skipped so far; the last line returned is number
  // lines_read() counting from 1.
  int64_t lines_read() const { return lines_read_; }
  const std::string& path() const { return path_; }

 private:
  LineReader(std::string path, std::FILE* file, size_t buffer_size);
  absl::Status Fill();  // moves the unread tail to the front and reads more

  std::string path_;
  std::FILE* file_;
  std::vector<char> buffer_;
  size_t begin_ = 0;  // unread data is buffer_[begin_, end_)
  size_t end_ = 0;
  bool eof_ = false;
  int64_t lines_read_ = 0;
};

}  // namespace ctrps

#endif  // CTRPS_WORKER_DATA_LINE_READER_H_
