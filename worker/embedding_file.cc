#include "worker/embedding_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status.h"
#include "worker/half.h"

namespace ctrps {
namespace {

// Per region and file; an export writes one file per table at a time.
constexpr size_t kBufferBytes = 256 << 10;

size_t ElementBytes(EmbDtype dtype) { return dtype == EmbDtype::kF16 ? 2 : 4; }

absl::Status PwriteAll(int fd, const std::string& path, const char* data, size_t n,
                       uint64_t offset) {
  while (n > 0) {
    const ssize_t w = ::pwrite(fd, data, n, static_cast<off_t>(offset));
    if (w < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(path, "write failed");
    }
    data += w;
    n -= static_cast<size_t>(w);
    offset += static_cast<uint64_t>(w);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<EmbeddingFileWriter>> EmbeddingFileWriter::Create(
    const std::string& path, int dim, EmbDtype dtype, uint64_t rows) {
  if (dim <= 0)
    return absl::InvalidArgumentError(absl::StrCat(path, ": dim must be > 0, got ", dim));
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError(path, "cannot create");
  return std::unique_ptr<EmbeddingFileWriter>(new EmbeddingFileWriter(path, fd, dim, dtype, rows));
}

EmbeddingFileWriter::EmbeddingFileWriter(std::string path, int fd, int dim, EmbDtype dtype,
                                         uint64_t rows)
    : path_(std::move(path)), fd_(fd), dim_(dim), dtype_(dtype), rows_(rows) {
  key_buffer_.reserve(kBufferBytes);
  value_buffer_.reserve(kBufferBytes);
}

EmbeddingFileWriter::~EmbeddingFileWriter() {
  if (fd_ >= 0) ::close(fd_);
}

absl::Status EmbeddingFileWriter::Add(uint64_t key, const float* values) {
  if (added_ == rows_) {
    return absl::FailedPreconditionError(
        absl::StrCat(path_, ": more than the ", rows_, " rows announced"));
  }
  if (added_ > 0 && key <= last_key_) {
    return absl::FailedPreconditionError(
        absl::StrCat(path_, ": key ", key, " added after ", last_key_, " (keys must ascend)"));
  }
  const char* k = reinterpret_cast<const char*>(&key);
  key_buffer_.insert(key_buffer_.end(), k, k + sizeof(key));
  if (dtype_ == EmbDtype::kF16) {
    const size_t at = value_buffer_.size();
    value_buffer_.resize(at + 2 * static_cast<size_t>(dim_));
    for (int d = 0; d < dim_; ++d) {
      const uint16_t h = FloatToHalf(values[d]);
      std::memcpy(&value_buffer_[at + 2 * d], &h, 2);
    }
  } else {
    const char* v = reinterpret_cast<const char*>(values);
    value_buffer_.insert(value_buffer_.end(), v, v + 4 * static_cast<size_t>(dim_));
  }
  last_key_ = key;
  ++added_;
  if (key_buffer_.size() >= kBufferBytes || value_buffer_.size() >= kBufferBytes) return Flush();
  return absl::OkStatus();
}

absl::Status EmbeddingFileWriter::Flush() {
  const uint64_t values_offset = kEmbHeaderBytes + rows_ * sizeof(uint64_t);
  RETURN_IF_ERROR(PwriteAll(fd_, path_, key_buffer_.data(), key_buffer_.size(),
                            kEmbHeaderBytes + keys_written_));
  keys_written_ += key_buffer_.size();
  key_buffer_.clear();
  RETURN_IF_ERROR(PwriteAll(fd_, path_, value_buffer_.data(), value_buffer_.size(),
                            values_offset + values_written_));
  values_written_ += value_buffer_.size();
  value_buffer_.clear();
  return absl::OkStatus();
}

absl::Status EmbeddingFileWriter::Finish() {
  if (added_ != rows_) {
    return absl::FailedPreconditionError(
        absl::StrCat(path_, ": ", added_, " rows added, ", rows_, " announced"));
  }
  RETURN_IF_ERROR(Flush());
  char header[kEmbHeaderBytes] = {};
  std::memcpy(header, kEmbMagic, sizeof(kEmbMagic));
  const uint32_t fields[4] = {kEmbVersion, static_cast<uint32_t>(dim_),
                              static_cast<uint32_t>(dtype_), 0};
  std::memcpy(header + 8, fields, sizeof(fields));
  std::memcpy(header + 24, &rows_, sizeof(rows_));
  RETURN_IF_ERROR(PwriteAll(fd_, path_, header, sizeof(header), 0));
  if (::fdatasync(fd_) != 0) return ErrnoError(path_, "sync failed");
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) return ErrnoError(path_, "close failed");
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<EmbeddingFile>> EmbeddingFile::Open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return absl::NotFoundError(absl::StrCat(path, ": no such file"));
    return ErrnoError(path, "cannot open");
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    absl::Status s = ErrnoError(path, "cannot stat");
    ::close(fd);
    return s;
  }
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size < kEmbHeaderBytes) {
    ::close(fd);
    return absl::DataLossError(absl::StrFormat(
        "%s: truncated: %d bytes, shorter than the %d-byte header", path, size, kEmbHeaderBytes));
  }
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  const int map_errno = errno;  // before close() can change it
  ::close(fd);                  // the mapping keeps the file
  if (map == MAP_FAILED) return ErrnoError(path, "cannot map", map_errno);
  std::unique_ptr<EmbeddingFile> file(new EmbeddingFile());
  file->path_ = path;
  file->map_ = map;
  file->map_bytes_ = size;

  const char* base = static_cast<const char*>(map);
  if (std::memcmp(base, kEmbMagic, sizeof(kEmbMagic)) != 0) {
    return absl::DataLossError(absl::StrCat(path, ": not an embedding file (bad magic)"));
  }
  uint32_t fields[4];
  std::memcpy(fields, base + 8, sizeof(fields));
  uint64_t rows;
  std::memcpy(&rows, base + 24, sizeof(rows));
  if (fields[0] != kEmbVersion) {
    return absl::DataLossError(
        absl::StrCat(path, ": version ", fields[0], ", this reader knows ", kEmbVersion));
  }
  if (fields[1] == 0 || fields[1] > (1u << 20)) {
    return absl::DataLossError(absl::StrCat(path, ": bad dim ", fields[1]));
  }
  if (fields[2] != static_cast<uint32_t>(EmbDtype::kF32) &&
      fields[2] != static_cast<uint32_t>(EmbDtype::kF16)) {
    return absl::DataLossError(absl::StrCat(path, ": unknown dtype ", fields[2]));
  }
  file->dim_ = static_cast<int>(fields[1]);
  file->dtype_ = static_cast<EmbDtype>(fields[2]);
  const uint64_t row_bytes = file->dim_ * ElementBytes(file->dtype_);
  // rows is untrusted: bound it by the file size before multiplying.
  const uint64_t max_rows = (size - kEmbHeaderBytes) / (sizeof(uint64_t) + row_bytes);
  if (rows > max_rows) {
    return absl::DataLossError(absl::StrFormat(
        "%s: truncated: %d bytes hold at most %d rows of dim %d, the header says %d", path, size,
        max_rows, file->dim_, rows));
  }
  const uint64_t expected = kEmbHeaderBytes + rows * (sizeof(uint64_t) + row_bytes);
  if (expected != size) {
    return absl::DataLossError(
        absl::StrFormat("%s: %d bytes, but the header's %d rows of dim %d take %d (corrupt)", path,
                        size, rows, file->dim_, expected));
  }
  file->rows_ = rows;
  file->keys_ = reinterpret_cast<const uint64_t*>(base + kEmbHeaderBytes);
  file->values_ = base + kEmbHeaderBytes + rows * sizeof(uint64_t);

  // Directory: about four keys per bucket.
  int bits = 0;
  while (bits < 32 && (uint64_t{4} << bits) < rows) ++bits;
  file->shift_ = 64 - bits;
  file->buckets_.assign((size_t{1} << bits) + 1, 0);
  const uint64_t* keys = file->keys_;
  uint64_t bucket = 0;
  for (uint64_t i = 0; i < rows; ++i) {
    if (i > 0 && keys[i] <= keys[i - 1]) {
      return absl::DataLossError(absl::StrCat(path, ": keys out of order at row ", i, " (",
                                              keys[i - 1], " then ", keys[i], ")"));
    }
    const uint64_t b = file->shift_ == 64 ? 0 : keys[i] >> file->shift_;
    while (bucket < b) file->buckets_[++bucket] = i;
  }
  while (bucket + 1 < file->buckets_.size()) file->buckets_[++bucket] = rows;
  return file;
}

EmbeddingFile::~EmbeddingFile() {
  if (map_ != nullptr) ::munmap(map_, map_bytes_);
}

int64_t EmbeddingFile::Find(uint64_t key) const {
  const uint64_t b = shift_ == 64 ? 0 : key >> shift_;
  const uint64_t* first = keys_ + buckets_[b];
  const uint64_t* last = keys_ + buckets_[b + 1];
  const uint64_t* it = std::lower_bound(first, last, key);
  if (it == last || *it != key) return -1;
  return it - keys_;
}

void EmbeddingFile::ReadRow(uint64_t row, float* out) const {
  if (dtype_ == EmbDtype::kF32) {
    std::memcpy(out, values_ + row * dim_ * 4, sizeof(float) * dim_);
    return;
  }
  const char* src = values_ + row * dim_ * 2;
  for (int d = 0; d < dim_; ++d) {
    uint16_t h;
    std::memcpy(&h, src + 2 * d, 2);
    out[d] = HalfToFloat(h);
  }
}

}  // namespace ctrps
