// The embedding files of an export, `<table>.<shard>.emb` (format in
// common/proto/checkpoint.proto): a 32-byte header ("CTRPSEMB", u32 version
// 1, u32 dim, u32 dtype 0 = f32 / 1 = f16, u32 reserved, u64 rows), `rows`
// u64 keys in ascending order, then rows x dim values, all little-endian.
#ifndef CTRPS_WORKER_EMBEDDING_FILE_H_
#define CTRPS_WORKER_EMBEDDING_FILE_H_

#include <bit>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ctrps {

static_assert(std::endian::native == std::endian::little,
              "embedding files are little-endian and mapped as they are");

inline constexpr char kEmbMagic[8] = {'C', 'T', 'R', 'P', 'S', 'E', 'M', 'B'};
inline constexpr uint32_t kEmbVersion = 1;
inline constexpr size_t kEmbHeaderBytes = 32;
enum class EmbDtype : uint32_t { kF32 = 0, kF16 = 1 };

// Writes one embedding file of a known number of rows. Keys and values go
// to their two regions through separate buffers, so rows are added in one
// pass. Not thread-safe.
class EmbeddingFileWriter {
 public:
  // Creates (truncates) `path`. InvalidArgument for dim <= 0; if it cannot
  // be created, the code of the failed call's errno (ErrnoError: NotFound,
  // PermissionDenied, ResourceExhausted for a full disk, ...).
  static absl::StatusOr<std::unique_ptr<EmbeddingFileWriter>> Create(const std::string& path,
                                                                     int dim, EmbDtype dtype,
                                                                     uint64_t rows);
  ~EmbeddingFileWriter();  // closes; a file not Finish()ed is incomplete

  // Appends a row: `dim` floats (converted to f16, round to nearest even,
  // for kF16). Keys must be strictly ascending; FailedPrecondition when not,
  // or past `rows` rows. On a write error the code of its errno:
  // ResourceExhausted for a full disk, a quota or the file-size limit. After
  // an error the file is incomplete.
  absl::Status Add(uint64_t key, const float* values);

  // Flushes and syncs the file. FailedPrecondition if fewer rows than
  // announced were added; a failed write, sync or close as for Add.
  absl::Status Finish();

 private:
  EmbeddingFileWriter(std::string path, int fd, int dim, EmbDtype dtype, uint64_t rows);
  absl::Status Flush();

  const std::string path_;
  int fd_;
  const int dim_;
  const EmbDtype dtype_;
  const uint64_t rows_;
  uint64_t added_ = 0;
  uint64_t last_key_ = 0;
  uint64_t keys_written_ = 0;  // bytes of the key region already written
  uint64_t values_written_ = 0;
  std::vector<char> key_buffer_;
  std::vector<char> value_buffer_;
};

// A read-only, memory-mapped embedding file with a lookup directory: the
// sorted keys are cut into buckets by their top bits (about four keys per
// bucket for well-mixed keys), so a lookup reads one directory entry and a
// few keys. Immutable after Open(); every method is thread-safe.
class EmbeddingFile {
 public:
  // Maps `path` and checks it. NotFound if it does not exist; DataLoss
  // naming the file for a wrong magic, version or dtype, a size that does
  // not match the header (truncated) or keys out of order. The dim and dtype
  // are not checked against anything: compare dim() and dtype() with what
  // the caller expects.
  static absl::StatusOr<std::unique_ptr<EmbeddingFile>> Open(const std::string& path);
  ~EmbeddingFile();
  EmbeddingFile(const EmbeddingFile&) = delete;
  EmbeddingFile& operator=(const EmbeddingFile&) = delete;

  const std::string& path() const { return path_; }
  int dim() const { return dim_; }
  EmbDtype dtype() const { return dtype_; }
  uint64_t rows() const { return rows_; }
  std::span<const uint64_t> keys() const { return {keys_, rows_}; }

  // The row index of `key`, or -1 when the file has no row for it.
  int64_t Find(uint64_t key) const;

  // Writes row `row`'s dim() values as floats to `out`. Requires row < rows().
  void ReadRow(uint64_t row, float* out) const;

 private:
  EmbeddingFile() = default;

  std::string path_;
  void* map_ = nullptr;
  size_t map_bytes_ = 0;
  int dim_ = 0;
  EmbDtype dtype_ = EmbDtype::kF32;
  uint64_t rows_ = 0;
  const uint64_t* keys_ = nullptr;
  const char* values_ = nullptr;
  int shift_ = 64;                 // bucket of a key: key >> shift_ (one bucket: 64)
  std::vector<uint64_t> buckets_;  // first row of each bucket, plus rows_ at the end
};

}  // namespace ctrps

#endif  // CTRPS_WORKER_EMBEDDING_FILE_H_
