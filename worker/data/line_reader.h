// Reads a text file line by line (or CSV record by record) through one large
// buffer: no per-line allocation, no iostreams.
//
// Compression is recognised by the file's first bytes, not its name: gzip
// (1f 8b; concatenated members, as `cat a.gz b.gz` and bgzip write, are read
// as one stream) and zstd (28 b5 2f fd; several frames likewise). Anything
// else, and any pipe, is read as plain text.
#ifndef CTRPS_WORKER_DATA_LINE_READER_H_
#define CTRPS_WORKER_DATA_LINE_READER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ctrps {

enum class Compression { kNone, kGzip, kZstd };

// Where the bytes of a file come from (the file itself or a decompressor).
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Reads up to `n` bytes into `dst`; 0 at the end. Errors: the OS error of
  // the read (ErrnoError), DataLoss for a corrupt or truncated compressed
  // stream.
  virtual absl::StatusOr<size_t> Read(char* dst, size_t n) = 0;
};

class LineReader {
 public:
  static constexpr size_t kDefaultBufferSize = 4 << 20;
  // A quoted CSV field may span at most this many lines; past it (or at the
  // end of the file) the quote counts as unclosed (see set_quote).
  static constexpr int kMaxRecordLines = 1000;

  // Opens `path`. NotFound (`<path>: no such file`); otherwise the code of
  // the OS error (ErrnoError: PermissionDenied, ...); DataLoss if a
  // compressed file's header is damaged.
  static absl::StatusOr<std::unique_ptr<LineReader>> Open(const std::string& path,
                                                          size_t buffer_size = kDefaultBufferSize);
  ~LineReader();
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  // CSV records: with a quote character set, a newline inside a quoted field
  // does not end the record (RFC 4180), so Next() may return several physical
  // lines joined by their line ends. A record whose quote is still open after
  // kMaxRecordLines lines or at the end of the file is returned as its first
  // line alone (the parser then reports the unclosed quote) and reading goes
  // on from the line after it, so one stray quote costs one line. '\0' turns
  // this off (the default: every line is a record).
  void set_quote(char quote) { quote_ = quote; }

  // Sets *line to the next record without its final "\n" (or "\r\n") and
  // returns true; false at the end of the file. *line stays valid until the
  // next call. A last line without a newline is returned too. Records longer
  // than the buffer grow it. On a read error the code of its errno
  // (ErrnoError); DataLoss for a damaged compressed stream.
  absl::StatusOr<bool> Next(std::string_view* line);

  // Skips records until `lines_read() >= line` (or the end of the file);
  // false if the file ended first.
  absl::StatusOr<bool> SkipTo(int64_t line);

  // Physical lines returned or skipped so far: the last record returned ends
  // on line lines_read() and starts on record_first_line() (1-based).
  int64_t lines_read() const { return lines_read_; }
  int64_t record_first_line() const { return record_first_line_; }
  const std::string& path() const { return path_; }
  Compression compression() const { return compression_; }

 private:
  LineReader(std::string path, std::unique_ptr<ByteSource> source, Compression compression,
             size_t buffer_size);
  absl::Status Fill();  // moves the unread tail to the front and reads more
  // Returns [begin_, end) as a record and advances past `consumed` bytes.
  void Take(size_t len, size_t consumed, int lines, std::string_view* line);

  std::string path_;
  std::unique_ptr<ByteSource> source_;
  Compression compression_;
  std::vector<char> buffer_;
  size_t begin_ = 0;  // unread data is buffer_[begin_, end_)
  size_t end_ = 0;
  bool eof_ = false;
  char quote_ = '\0';
  int64_t lines_read_ = 0;
  int64_t record_first_line_ = 0;
};

}  // namespace ctrps

#endif  // CTRPS_WORKER_DATA_LINE_READER_H_
