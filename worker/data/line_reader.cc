#include "worker/data/line_reader.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace ctrps {
namespace {

class FdHolder {
 public:
  explicit FdHolder(int fd) : fd_(fd) {}
  ~FdHolder() {
    if (fd_ >= 0) ::close(fd_);
  }
  FdHolder(const FdHolder&) = delete;
  FdHolder& operator=(const FdHolder&) = delete;
  int get() const { return fd_; }
  int release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

// read(2) until `n` bytes or the end of the file.
absl::StatusOr<size_t> ReadFd(int fd, char* dst, size_t n, const std::string& path) {
  size_t got = 0;
  while (got < n) {
    const ssize_t r = ::read(fd, dst + got, n - got);
    if (r == 0) break;
    if (r < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(path, "read error", errno);
    }
    got += static_cast<size_t>(r);
  }
  return got;
}

class PlainSource : public ByteSource {
 public:
  PlainSource(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  absl::StatusOr<size_t> Read(char* dst, size_t n) override {
    return ReadFd(fd_.get(), dst, n, path_);
  }

 private:
  FdHolder fd_;
  std::string path_;
};

class GzipSource : public ByteSource {
 public:
  static absl::StatusOr<std::unique_ptr<ByteSource>> Open(int fd, std::string path) {
    gzFile gz = gzdopen(fd, "rb");
    if (gz == nullptr) {
      ::close(fd);
      return absl::ResourceExhaustedError(absl::StrCat(path, ": cannot start gzip decompression"));
    }
    gzbuffer(gz, 1 << 20);
    return std::unique_ptr<ByteSource>(new GzipSource(gz, std::move(path)));
  }
  ~GzipSource() override { gzclose_r(gz_); }
  absl::StatusOr<size_t> Read(char* dst, size_t n) override {
    size_t got = 0;
    while (got < n) {
      const unsigned chunk = static_cast<unsigned>(std::min<size_t>(n - got, 1u << 30));
      const int r = gzread(gz_, dst + got, chunk);
      if (r < 0) {
        int code = 0;
        const char* what = gzerror(gz_, &code);
        if (code == Z_ERRNO) return ErrnoError(path_, "read error", errno);
        return absl::DataLossError(
            absl::StrCat(path_, ": damaged gzip stream: ", what == nullptr ? "?" : what));
      }
      if (r == 0) {
        // gzread reports a truncated last member as the end of the data,
        // with the error kept for gzerror.
        int code = 0;
        const char* what = gzerror(gz_, &code);
        if (code != Z_OK && code != Z_STREAM_END) {
          return absl::DataLossError(
              absl::StrCat(path_, ": damaged gzip stream: ", what == nullptr ? "?" : what));
        }
        break;
      }
      got += static_cast<size_t>(r);
    }
    return got;
  }

 private:
  GzipSource(gzFile gz, std::string path) : gz_(gz), path_(std::move(path)) {}
  gzFile gz_;
  std::string path_;
};

class ZstdSource : public ByteSource {
 public:
  ZstdSource(int fd, std::string path)
      : fd_(fd), path_(std::move(path)), in_(ZSTD_DStreamInSize()), stream_(ZSTD_createDStream()) {}
  ~ZstdSource() override { ZSTD_freeDStream(stream_); }
  absl::StatusOr<size_t> Read(char* dst, size_t n) override {
    if (stream_ == nullptr) {
      return absl::ResourceExhaustedError(absl::StrCat(path_, ": cannot start zstd decompression"));
    }
    ZSTD_outBuffer out{dst, n, 0};
    while (out.pos < out.size) {
      if (in_pos_ == in_size_) {
        if (in_eof_) break;
        ASSIGN_OR_RETURN(in_size_, ReadFd(fd_.get(), in_.data(), in_.size(), path_));
        in_pos_ = 0;
        if (in_size_ == 0) {
          in_eof_ = true;
          if (frame_open_) {
            return absl::DataLossError(
                absl::StrCat(path_, ": damaged zstd stream: the file ends inside a frame"));
          }
          break;
        }
      }
      ZSTD_inBuffer in{in_.data(), in_size_, in_pos_};
      const size_t r = ZSTD_decompressStream(stream_, &out, &in);
      in_pos_ = in.pos;
      if (ZSTD_isError(r)) {
        return absl::DataLossError(
            absl::StrCat(path_, ": damaged zstd stream: ", ZSTD_getErrorName(r)));
      }
      frame_open_ = r != 0;
    }
    return out.pos;
  }

 private:
  FdHolder fd_;
  std::string path_;
  std::vector<char> in_;
  size_t in_size_ = 0;
  size_t in_pos_ = 0;
  bool in_eof_ = false;
  bool frame_open_ = false;
  ZSTD_DStream* stream_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<LineReader>> LineReader::Open(const std::string& path,
                                                             size_t buffer_size) {
  FdHolder fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    const int err = errno;
    if (err == ENOENT) return absl::NotFoundError(absl::StrCat(path, ": no such file"));
    return ErrnoError(path, "cannot open", err);
  }
  (void)::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
  unsigned char magic[4] = {0, 0, 0, 0};
  ssize_t got;
  do {
    got = ::pread(fd.get(), magic, sizeof(magic), 0);
  } while (got < 0 && errno == EINTR);
  // A pipe cannot be peeked at: it is read as plain text.
  if (got < 0 && errno != ESPIPE) return ErrnoError(path, "read error", errno);
  std::unique_ptr<ByteSource> source;
  Compression compression = Compression::kNone;
  if (got >= 2 && magic[0] == 0x1f && magic[1] == 0x8b) {
    compression = Compression::kGzip;
    ASSIGN_OR_RETURN(source, GzipSource::Open(fd.release(), path));
  } else if (got == 4 && magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f &&
             magic[3] == 0xfd) {
    compression = Compression::kZstd;
    source = std::make_unique<ZstdSource>(fd.release(), path);
  } else {
    source = std::make_unique<PlainSource>(fd.release(), path);
  }
  return std::unique_ptr<LineReader>(
      new LineReader(path, std::move(source), compression, buffer_size < 16 ? 16 : buffer_size));
}

LineReader::LineReader(std::string path, std::unique_ptr<ByteSource> source,
                       Compression compression, size_t buffer_size)
    : path_(std::move(path)),
      source_(std::move(source)),
      compression_(compression),
      buffer_(buffer_size) {}

LineReader::~LineReader() = default;

absl::Status LineReader::Fill() {
  if (begin_ > 0) {
    std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  if (end_ == buffer_.size())
    buffer_.resize(buffer_.size() * 2);  // a record longer than the buffer
  absl::StatusOr<size_t> n = source_->Read(buffer_.data() + end_, buffer_.size() - end_);
  if (!n.ok()) {
    return absl::Status(n.status().code(),
                        absl::StrCat(n.status().message(), " (near line ", lines_read_ + 1, ")"));
  }
  end_ += *n;
  if (*n == 0) eof_ = true;
  return absl::OkStatus();
}

void LineReader::Take(size_t len, size_t consumed, int lines, std::string_view* line) {
  const char* data = buffer_.data() + begin_;
  begin_ += consumed;
  if (len > 0 && data[len - 1] == '\r') --len;
  *line = std::string_view(data, len);
  record_first_line_ = lines_read_ + 1;
  lines_read_ += lines;
}

absl::StatusOr<bool> LineReader::Next(std::string_view* line) {
  // Offsets below are relative to begin_, which Fill() may move.
  size_t scanned = 0;  // [0, scanned) holds no newline still to look at
  size_t first_nl = std::string_view::npos;
  int lines = 0;          // newlines inside the record so far (quoted)
  bool in_quote = false;  // quote parity of [0, scanned)
  auto flip_quotes = [&](size_t from, size_t to) {
    const char* p = buffer_.data() + begin_ + from;
    const char* e = buffer_.data() + begin_ + to;
    while ((p = static_cast<const char*>(std::memchr(p, quote_, e - p))) != nullptr) {
      in_quote = !in_quote;
      ++p;
    }
  };
  while (true) {
    const char* base = buffer_.data() + begin_;
    const size_t avail = end_ - begin_;
    const char* nl = static_cast<const char*>(std::memchr(base + scanned, '\n', avail - scanned));
    if (nl != nullptr) {
      const size_t pos = nl - base;
      if (quote_ != '\0') flip_quotes(scanned, pos);
      if (!in_quote) {
        Take(pos, pos + 1, lines + 1, line);
        return true;
      }
      if (first_nl == std::string_view::npos) first_nl = pos;
      if (++lines >= kMaxRecordLines) {
        Take(first_nl, first_nl + 1, 1, line);
        return true;
      }
      scanned = pos + 1;
      continue;
    }
    if (quote_ != '\0') flip_quotes(scanned, avail);
    scanned = avail;
    if (eof_) {
      if (avail == 0) return false;
      if (in_quote && first_nl != std::string_view::npos) {
        Take(first_nl, first_nl + 1, 1, line);
      } else {
        Take(avail, avail, lines + 1, line);
      }
      return true;
    }
    RETURN_IF_ERROR(Fill());
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
