// Where a table stripe's cold rows go when the server is over its memory
// limit: a hash table of fixed-size rows in a memory-mapped file.
//
// The file is an array of buckets. A bucket is one 64-byte line of
// 16-bit tags (0 empty, 1 deleted, else a fingerprint of the key) followed by
// up to 32 row slots, sized so that a bucket fits in a 4 KB page for rows of
// up to ~4 KB. A lookup reads the tag line of the key's home bucket, compares
// every tag at once, and touches a slot only on a fingerprint match: about two
// cache misses and one page per lookup, no per-key index in memory, no
// decoding. A full bucket sends later keys to the next one (linear probing by
// bucket); deletions leave a tombstone only in buckets that were ever full.
//
// Rows start with their 64-bit key (RowMeta does). Nothing in the file is
// meant to outlive the process: it is scratch, removed by the destructor; a
// checkpoint of the table goes to RocksDB. Growing re-inserts every row into a
// new file twice the size (per stripe, so one step moves 1/16 of a table)
// and removes the old one; Rewrite copies the file into a new one.
//
// Why Rewrite: the kernel writes a file's dirty pages back to disk once the
// file has been dirty for vm.dirty_expire_centisecs (30 s by default), and
// before it writes a page mapped writable it write-protects it, so the next
// store into that page faults. Rows updated in place at random dirty every
// page, so each expiry turns into one fault per page of the file (and, in a
// VM, a TLB-flush interrupt per page): on a 2-core VM, 20 s of pushes 10x
// over the limit averaged 0.2-3.4M keys/s with that writeback and 7.6M with
// it deferred (docs/BENCHMARKS.md, session 8). For
// scratch that writeback is wasted; a file rewritten before it expires is
// never written back, and its unlinked predecessor's dirty pages are dropped
// unwritten. Memory pressure still writes pages out, as a spill should, and
// so does the kernel's background writeback once all dirty pages pass
// vm.dirty_background_ratio of memory (10% by default): past that the
// kernel writes pages back whatever their age, and rewrites help less.
//
// Not thread-safe: the stripe's mutex guards it. Pointers returned by Find
// stay valid until the next Put, Erase, growth, Rewrite or RewriteStep.
#ifndef CTRPS_PS_SPILL_FILE_H_
#define CTRPS_PS_SPILL_FILE_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "ps/prefetch.h"

namespace ctrps {

class SpillFile {
 public:
  // A new, empty file at `path` (an existing file there is replaced).
  // row_bytes >= 8 and a multiple of 8. Unavailable when the file cannot be
  // created or its space reserved.
  static absl::StatusOr<std::unique_ptr<SpillFile>> Create(std::string path, size_t row_bytes);
  ~SpillFile();
  SpillFile(const SpillFile&) = delete;
  SpillFile& operator=(const SpillFile&) = delete;

  // The file now in use: `path`, or `path`.N after N growths and rewrites.
  const std::string& file() const { return file_; }
  // Files made so far after the first (growths and rewrites).
  int generation() const { return generation_; }
  size_t size() const { return used_; }
  size_t row_bytes() const { return row_bytes_; }
  // Bytes of the file (all buckets, used or not).
  uint64_t file_bytes() const { return static_cast<uint64_t>(buckets_) * stride_; }

  // Brings the tag line of `key`'s home bucket toward the cache.
  void Prefetch(uint64_t key) const { PrefetchLine(TagsOf(HomeBucket(Hash(key)))); }

  // Brings the first `bytes` of the row of `key` toward the cache, if its
  // home bucket's tag line (see Prefetch) shows a fingerprint match.
  void PrefetchRow(uint64_t key, size_t bytes) const;

  // The stored row of `key`, or null.
  std::byte* Find(uint64_t key);

  // Stores a copy of `row` (row_bytes; its key is its first 8 bytes),
  // replacing the row with the same key. Unavailable when the file has to
  // grow and cannot (disk full), in which case nothing changed.
  absl::Status Put(const std::byte* row);

  // Removes a row Find returned.
  void EraseFound(std::byte* row);

  // Whether the file in use was written since it was made: by Put,
  // EraseFound, or a caller's MarkWritten after changing a row in place
  // through a pointer from Find.
  bool written() const { return written_; }
  void MarkWritten() { written_ = true; }

  // Copies the file into a new one and removes the old one; pointers from
  // Find become invalid. Unavailable when the new file cannot be made (disk
  // full), in which case nothing changed. The same as StartRewrite, then
  // RewriteStep until it is done.
  absl::Status Rewrite();

  // A rewrite in steps, so that no single request waits for a whole file:
  // StartRewrite makes the new file (Unavailable, with nothing changed, when
  // it cannot); each RewriteStep moves as many whole buckets as fit in
  // `bytes` (at least one) more of the file, from the end, and returns true
  // once the new file is the one in use.
  // Between steps the file works as ever, its buckets split between the two
  // files; pointers from Find become invalid at each step. A growth
  // finishes a rewrite in progress first; the destructor removes both files.
  absl::Status StartRewrite();
  bool RewriteStep(size_t bytes);
  // Moves the rest of a rewrite in progress, if any.
  void FinishRewrite() { RewriteStep(std::numeric_limits<size_t>::max()); }
  bool rewriting() const { return next_base_ != nullptr; }

  // Calls fn(row) for every stored row; fn may change the row's bytes after
  // its key. When fn returns true the row is removed.
  template <typename Fn>
  void ForEach(Fn fn) {
    for (size_t b = 0; b < buckets_; ++b) {
      uint16_t* tags = TagsOf(b);
      for (int i = 0; i < slots_; ++i) {
        if (tags[i] < kMinTag) continue;
        if (fn(SlotOf(b, i))) Remove(b, i);
      }
    }
  }

 private:
  static constexpr uint16_t kEmpty = 0, kDeleted = 1, kMinTag = 2;
  static constexpr size_t kTagBytes = 64;
  static constexpr int kMaxSlots = kTagBytes / sizeof(uint16_t);

  SpillFile(std::string path, size_t row_bytes);

  static uint64_t Hash(uint64_t key);
  static uint16_t TagOf(uint64_t h) {
    const auto t = static_cast<uint16_t>(h);
    return t < kMinTag ? static_cast<uint16_t>(t + kMinTag) : t;
  }
  size_t HomeBucket(uint64_t h) const {
    return static_cast<size_t>((static_cast<unsigned __int128>(h) * buckets_) >> 64);
  }
  size_t NextBucket(size_t b) const { return b + 1 == buckets_ ? 0 : b + 1; }
  static uint64_t KeyOf(const std::byte* row) {
    uint64_t key;
    std::memcpy(&key, row, sizeof(key));
    return key;
  }
  // Bucket b: in the new file from split_ on while a rewrite is in progress
  // (split_ is the old file's size otherwise).
  std::byte* BucketOf(size_t b) const {
    const size_t at = b * stride_;
    return (at >= split_ ? next_base_ : base_) + at;
  }
  uint16_t* TagsOf(size_t b) const { return reinterpret_cast<uint16_t*>(BucketOf(b)); }
  std::byte* SlotOf(size_t b, int i) const { return BucketOf(b) + kTagBytes + i * row_bytes_; }
  // Bit i set where tags[i] == t, for the bucket's slots.
  uint32_t Match(const uint16_t* tags, uint16_t t) const;
  std::byte* Find(uint64_t key, uint64_t h);  // h = Hash(key)
  // Stores a copy of `row` (whose key, of hash h, is absent) in the first
  // empty or deleted slot of its probe sequence. The file must have room.
  void Place(uint64_t h, const std::byte* row);
  void Remove(size_t b, int i);
  // Maps a new file of `buckets` buckets and moves every row into it.
  absl::Status Resize(size_t buckets);
  // Puts a new file (mapped at `base`) in use in place of the old one, which
  // is closed and unlinked; returns the old mapping, still readable, for
  // the caller to unmap.
  std::byte* Replace(std::string file, int fd, std::byte* base);
  // Creates, sizes and maps a file; fills fd/base on success. With
  // `populate`, every page is mapped writable now, in one call rather than
  // one fault per page (for a file about to be filled).
  absl::Status MapNew(const std::string& path, size_t buckets, bool populate, int* fd, std::byte** base) const;

  const std::string path_;
  const size_t row_bytes_;
  const int slots_;      // row slots per bucket
  const size_t stride_;  // bytes per bucket
  std::string file_;
  int generation_ = 0;
  int fd_ = -1;
  std::byte* base_ = nullptr;
  // A rewrite in progress: the new file, and the first byte of the buckets
  // moved into it (file_bytes() when none is).
  std::string next_file_;
  int next_fd_ = -1;
  std::byte* next_base_ = nullptr;
  size_t split_ = 0;
  size_t buckets_ = 0;
  size_t used_ = 0;
  size_t deleted_ = 0;
  bool written_ = false;
};

}  // namespace ctrps

#endif  // CTRPS_PS_SPILL_FILE_H_
