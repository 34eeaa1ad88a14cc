#include "worker/data/line_reader.h"

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace ctrps {

absl::StatusOr<std::unique_ptr<LineReader>> LineReader::Open(const std::string& path,
                                                             size_t buffer_size) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    const int err = errno;
    if (err == ENOENT) return absl::NotFoundError(absl::StrCat(path, ": no such file"));
    return ErrnoError(path, "cannot open", err);
  }
  // The buffer is ours; stdio's own buffering would only add a copy.
  std::setvbuf(f, nullptr, _IONBF, 0);
  return std::unique_ptr<LineReader>(new LineReader(path, f, buffer_size < 16 ? 16 : buffer_size));
}

LineReader::LineReader(std::string path, std::FILE* file, size_t buffer_size)
    : path_(std::move(path)), file_(file), buffer_(buffer_size) {}

LineReader::~LineReader() { std::fclose(file_); }

absl::Status LineReader::Fill() {
  if (begin_ > 0) {
    std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  if (end_ == buffer_.size()) buffer_.resize(buffer_.size() * 2);  // a line longer than the buffer
  const size_t n = std::fread(buffer_.data() + end_, 1, buffer_.size() - end_, file_);
  end_ += n;
  if (n == 0) {
    if (std::ferror(file_)) {
      return ErrnoError(absl::StrCat(path_, ":", lines_read_ + 1), "read error");
    }
    eof_ = true;
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> LineReader::Next(std::string_view* line) {
  size_t scanned = begin_;  // no newline in [begin_, scanned)
  while (true) {
    const char* start = buffer_.data() + scanned;
    const char* nl = static_cast<const char*>(std::memchr(start, '\n', end_ - scanned));
    if (nl != nullptr) {
      size_t len = nl - (buffer_.data() + begin_);
      const char* data = buffer_.data() + begin_;
      begin_ += len + 1;
      if (len > 0 && data[len - 1] == '\r') --len;
      *line = std::string_view(data, len);
      ++lines_read_;
      return true;
    }
    if (eof_) {
      if (begin_ == end_) return false;
      size_t len = end_ - begin_;
      const char* data = buffer_.data() + begin_;
      begin_ = end_;
      if (data[len - 1] == '\r') --len;
      *line = std::string_view(data, len);
      ++lines_read_;
      return true;
    }
    const size_t unread = end_ - begin_;
    absl::Status s = Fill();
    if (!s.ok()) return s;
    scanned = begin_ + unread;
  }
}

absl::StatusOr<bool> LineReader::SkipTo(int64_t line) {
  std::string_view ignored;
  while (lines_read_ < line) {
    absl::StatusOr<bool> more = Next(&ignored);
    if (!more.ok()) return more.status();
    if (!*more) return false;
  }
  return true;
}

}  // namespace ctrps
