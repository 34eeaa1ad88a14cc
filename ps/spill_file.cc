#include "ps/spill_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/hash.h"
#include "common/status.h"

namespace ctrps {
namespace {

constexpr size_t kPage = 4096;
constexpr size_t kInitialBuckets = 16;
// Grow (or sweep tombstones) past this fraction of slots used or deleted;
// probes then end within a bucket or two.
constexpr double kMaxFill = 0.85;

// Maps [p, p + bytes) writable now, in one call rather than a fault per page
// as it is written: 2 us a page against 13 us in the VM this was measured in
// (bench/vm_probe). A hint: without MADV_POPULATE_WRITE (Linux before 5.14)
// the pages fault in as they are written.
void PopulateWritable(void* p, size_t bytes) {
#ifdef MADV_POPULATE_WRITE
  madvise(p, bytes, MADV_POPULATE_WRITE);
#else
  (void)p;
  (void)bytes;
#endif
}


}  // namespace

SpillFile::SpillFile(std::string path, size_t row_bytes)
    : path_(std::move(path)),
      row_bytes_(row_bytes),
      slots_(static_cast<int>(std::clamp<size_t>((kPage - kTagBytes) / row_bytes, 1, kMaxSlots))),
      stride_((kTagBytes + slots_ * row_bytes + 63) / 64 * 64) {}

absl::StatusOr<std::unique_ptr<SpillFile>> SpillFile::Create(std::string path, size_t row_bytes) {
  if (row_bytes < sizeof(uint64_t) || row_bytes % 8 != 0) {
    return absl::InvalidArgumentError(absl::StrFormat("spill file %s: row of %d bytes", path, row_bytes));
  }
  std::unique_ptr<SpillFile> f(new SpillFile(std::move(path), row_bytes));
  f->file_ = f->path_;
  RETURN_IF_ERROR(f->MapNew(f->file_, kInitialBuckets, /*populate=*/false, &f->fd_, &f->base_));
  f->buckets_ = kInitialBuckets;
  f->split_ = f->file_bytes();
  return f;
}

SpillFile::~SpillFile() {
  if (next_base_ != nullptr) {
    munmap(next_base_, file_bytes());
    close(next_fd_);
    unlink(next_file_.c_str());
  }
  if (base_ != nullptr) munmap(base_, file_bytes());
  if (fd_ >= 0) {
    close(fd_);
    unlink(file_.c_str());
  }
}

absl::Status SpillFile::MapNew(const std::string& path, size_t buckets, bool populate, int* fd,
                                std::byte** base) const {
  const size_t bytes = buckets * stride_;
  int f = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (f < 0) return ErrnoError("spill file " + path, "cannot create");
  // Reserve the blocks now: a write through the mapping into a file the disk
  // has no room for would kill the process with SIGBUS instead of failing.
  if (int err = posix_fallocate(f, 0, static_cast<off_t>(bytes)); err != 0) {
    close(f);
    unlink(path.c_str());
    return ErrnoError("spill file " + path, absl::StrCat("cannot reserve ", bytes, " bytes"), err);
  }
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, f, 0);
  if (p == MAP_FAILED) {
    const int err = errno;
    close(f);
    unlink(path.c_str());
    return ErrnoError("spill file " + path, absl::StrCat("cannot map ", bytes, " bytes"), err);
  }
  // One row per lookup: read-ahead would only evict useful pages.
  madvise(p, bytes, MADV_RANDOM);
  if (populate) PopulateWritable(p, bytes);
  *fd = f;
  *base = static_cast<std::byte*>(p);
  return absl::OkStatus();
}

uint64_t SpillFile::Hash(uint64_t key) {
  // Salted so that buckets do not line up with the memory index's slots.
  return Mix64(key ^ 0x6a09e667f3bcc908ULL);
}

uint32_t SpillFile::Match(const uint16_t* tags, uint16_t t) const {
  uint32_t m = 0;
#if defined(__SSE2__)
  const __m128i v = _mm_set1_epi16(static_cast<short>(t));
  const auto* p = reinterpret_cast<const __m128i*>(tags);
  for (int q = 0; q < 2; ++q) {
    const __m128i a = _mm_cmpeq_epi16(_mm_load_si128(p + 2 * q), v);
    const __m128i b = _mm_cmpeq_epi16(_mm_load_si128(p + 2 * q + 1), v);
    m |= static_cast<uint32_t>(_mm_movemask_epi8(_mm_packs_epi16(a, b))) << (16 * q);
  }
#else
  for (int i = 0; i < kMaxSlots; ++i) m |= static_cast<uint32_t>(tags[i] == t) << i;
#endif
  return slots_ == 32 ? m : m & ((1u << slots_) - 1);
}

void SpillFile::PrefetchRow(uint64_t key, size_t bytes) const {
  const uint64_t h = Hash(key);
  const size_t b = HomeBucket(h);
  const uint32_t m = Match(TagsOf(b), TagOf(h));
  if (m == 0) return;
  const std::byte* row = SlotOf(b, __builtin_ctz(m));
  PrefetchBytes(row, std::min(bytes, row_bytes_));
}

std::byte* SpillFile::Find(uint64_t key) { return Find(key, Hash(key)); }

std::byte* SpillFile::Find(uint64_t key, uint64_t h) {
  const uint16_t t = TagOf(h);
  for (size_t b = HomeBucket(h);; b = NextBucket(b)) {
    const uint16_t* tags = TagsOf(b);
    for (uint32_t m = Match(tags, t); m != 0; m &= m - 1) {
      std::byte* row = SlotOf(b, __builtin_ctz(m));
      if (KeyOf(row) == key) return row;
    }
    if (Match(tags, kEmpty) != 0) return nullptr;  // no key was ever pushed past this bucket
  }
}

absl::Status SpillFile::Put(const std::byte* row) {
  const uint64_t h = Hash(KeyOf(row));
  if (std::byte* old = Find(KeyOf(row), h); old != nullptr) {
    std::memcpy(old, row, row_bytes_);
  } else {
    const size_t capacity = buckets_ * slots_;
    if (static_cast<double>(used_ + deleted_ + 1) > kMaxFill * capacity) {
      // Mostly tombstones: sweep them at the same size; otherwise double.
      const bool crowded = static_cast<double>(used_ + 1) > 0.5 * capacity;
      RETURN_IF_ERROR(Resize(crowded ? buckets_ * 2 : buckets_));
    }
    Place(h, row);
  }
  written_ = true;
  return absl::OkStatus();
}

void SpillFile::Place(uint64_t h, const std::byte* row) {
  for (size_t b = HomeBucket(h);; b = NextBucket(b)) {
    uint16_t* tags = TagsOf(b);
    const uint32_t free = Match(tags, kEmpty) | Match(tags, kDeleted);
    if (free == 0) continue;
    const int i = __builtin_ctz(free);
    if (tags[i] == kDeleted) --deleted_;
    tags[i] = TagOf(h);
    std::memcpy(SlotOf(b, i), row, row_bytes_);
    ++used_;
    return;
  }
}

void SpillFile::EraseFound(std::byte* row) {
  const bool moved = next_base_ != nullptr && row >= next_base_ + split_ && row < next_base_ + file_bytes();
  const size_t off = static_cast<size_t>(row - (moved ? next_base_ : base_));
  const size_t b = off / stride_;
  Remove(b, static_cast<int>((off - b * stride_ - kTagBytes) / row_bytes_));
}

void SpillFile::Remove(size_t b, int i) {
  uint16_t* tags = TagsOf(b);
  // A bucket with an empty slot was never full, so no probe went past it:
  // the slot can be empty again instead of a tombstone.
  if (Match(tags, kEmpty) != 0) {
    tags[i] = kEmpty;
  } else {
    tags[i] = kDeleted;
    ++deleted_;
  }
  --used_;
  written_ = true;
}

std::byte* SpillFile::Replace(std::string file, int fd, std::byte* base) {
  // Closed and unlinked, the old file goes when its mapping does, and its
  // dirty pages are dropped unwritten; until then the mapping reads as before.
  close(fd_);
  unlink(file_.c_str());
  std::byte* old = base_;
  base_ = base;
  fd_ = fd;
  file_ = std::move(file);
  ++generation_;
  written_ = false;
  return old;
}

absl::Status SpillFile::Resize(size_t buckets) {
  FinishRewrite();
  std::string next = absl::StrCat(path_, ".", generation_ + 1);
  int fd = -1;
  std::byte* base = nullptr;
  RETURN_IF_ERROR(MapNew(next, buckets, /*populate=*/true, &fd, &base));
  const size_t old_buckets = buckets_;
  std::byte* old_base = Replace(std::move(next), fd, base);
  buckets_ = buckets;
  split_ = file_bytes();
  used_ = 0;
  deleted_ = 0;
  for (size_t b = 0; b < old_buckets; ++b) {
    const auto* tags = reinterpret_cast<const uint16_t*>(old_base + b * stride_);
    for (int i = 0; i < slots_; ++i) {
      if (tags[i] < kMinTag) continue;
      const std::byte* row = old_base + b * stride_ + kTagBytes + i * row_bytes_;
      Place(Hash(KeyOf(row)), row);
    }
  }
  munmap(old_base, old_buckets * stride_);
  return absl::OkStatus();
}

absl::Status SpillFile::Rewrite() {
  RETURN_IF_ERROR(StartRewrite());
  FinishRewrite();
  return absl::OkStatus();
}

absl::Status SpillFile::StartRewrite() {
  if (rewriting()) return absl::OkStatus();
  std::string next = absl::StrCat(path_, ".", generation_ + 1);
  RETURN_IF_ERROR(MapNew(next, buckets_, /*populate=*/false, &next_fd_, &next_base_));
  next_file_ = std::move(next);
  split_ = file_bytes();
  return absl::OkStatus();
}

bool SpillFile::RewriteStep(size_t bytes) {
  // At the same size every row keeps its bucket and slot: a copy of the
  // bytes, tombstones and all, is the same table, whichever part of it has
  // been copied so far.
  //
  // From the end, in chunks of whole buckets, the old file is cut short
  // behind each chunk copied, so the rewrite adds at most a chunk to the
  // dirty memory: the kernel writes back whatever dirty pages are oldest
  // once they pass vm.dirty_background_ratio, and a whole second copy of a
  // file took a 2 GB spill on a 24 GB machine past it (then 1.6 GB was
  // written back during the pushes the rewrites were there to spare).
  // Truncation drops pages unwritten on every file system; punching holes
  // writes them back first on some. A 128 MB file takes 0.27-0.29 s here,
  // most of it the first touch of each new page (bench/vm_probe --parts
  // spill --spill_mb 96).
  constexpr size_t kChunkBytes = 16u << 20;
  if (!rewriting()) return true;
  const size_t chunk = std::max<size_t>(1, std::min(bytes, kChunkBytes) / stride_) * stride_;
  // At least one chunk, and no more whole chunks than fit in `bytes`.
  for (size_t moved = 0; split_ > 0 && (moved == 0 || moved + chunk <= bytes); moved += chunk) {
    const size_t at = split_ > chunk ? split_ - chunk : 0;
    PopulateWritable(next_base_ + at, split_ - at);
    std::memcpy(next_base_ + at, base_ + at, split_ - at);
    split_ = at;
    // The old mapping is not read past `at` again. If the truncation fails,
    // the old file's pages go when it is unlinked below.
    [[maybe_unused]] const int cut = ftruncate(fd_, static_cast<off_t>(at));
  }
  if (split_ > 0) return false;
  const size_t size = file_bytes();
  std::byte* next_base = next_base_;
  next_base_ = nullptr;
  munmap(Replace(std::move(next_file_), next_fd_, next_base), size);
  next_fd_ = -1;
  split_ = size;
  return true;
}

}  // namespace ctrps
