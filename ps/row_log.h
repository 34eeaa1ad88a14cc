// Where a table stripe's cold rows go when the server is over its memory
// limit: a log of fixed-size row records in segment files, with an index of
// key -> record address in memory.
//
// Writes are appends: a record goes into a write buffer, and a full buffer
// is written to the open segment with one pwrite (sequential, large). A row
// written again gets a new record; the old one becomes stale. Segments
// whose records are mostly stale are compacted (CompactStep): their live
// records are appended again and the file is removed, in bounded steps.
// Reads are explicit (Read): batched, through io_uring where the kernel
// allows it (every read of a batch in flight at once, which is what a disk
// needs to reach its IOPS), else pread. Nothing is memory-mapped, so the
// kernel's page cache holds what it can of the log without it counting in
// the server's resident memory, and no page is ever faulted in or
// write-protected under a request.
//
// Addresses: a record's address is segment slot * records_per_segment +
// its place in the segment, below KeyIndex::kNone - 255. Slots of removed
// segments are reused, so addresses stay bounded by the log's size, not by
// how much was ever written. Each segment also gets a sequence number that
// only grows, so "appended after X" is a comparison (Position).
//
// The index holds the full key (KeyIndex, filled to 85% and grown by 15%,
// so its memory follows the rows on disk closely): 12.8 bytes an entry, 15
// to 17.3 bytes a key (ps_bench prints the figure of a run);
// index_bytes() is exact and the table charges it to the memory budget.
//
// Files are scratch: the destructor removes them; checkpoints go through
// RocksDB. Not thread-safe: the stripe's mutex guards it.
#ifndef CTRPS_PS_ROW_LOG_H_
#define CTRPS_PS_ROW_LOG_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "ps/key_index.h"

namespace ctrps {

class RowLog {
 public:
  static constexpr uint32_t kNone = KeyIndex::kNone;
  static constexpr int kIndexLoadPercent = 85;
  static constexpr int kIndexGrowthPercent = 115;

  struct Options {
    std::string dir;       // must exist
    std::string name;      // file name prefix: <dir>/<name>.<slot>
    size_t row_bytes = 0;  // >= 8, any size; a row's first 8 bytes are its key
    size_t segment_bytes = size_t{64} << 20;
    size_t buffer_bytes = size_t{256} << 10;
    // Appends that would leave the file system with fewer free bytes than
    // this are refused (ResourceExhausted) before anything is written.
    uint64_t min_free_disk_bytes = 0;
    // Compaction is due when stale bytes exceed this share of the log's
    // bytes (and at least one segment's worth): the log takes at most
    // 1 / (1 - max_stale_fraction) of its live rows' bytes on disk, plus a
    // segment.
    double max_stale_fraction = 0.25;
  };

  // InvalidArgument for row_bytes < 8 or a segment under two rows.
  static absl::StatusOr<std::unique_ptr<RowLog>> Create(const Options& options);
  ~RowLog();
  RowLog(const RowLog&) = delete;
  RowLog& operator=(const RowLog&) = delete;

  size_t row_bytes() const { return options_.row_bytes; }
  // Live rows (keys in the index).
  size_t size() const { return index_.size(); }
  size_t index_bytes() const { return index_.bytes() + segments_.capacity() * sizeof(Segment); }
  // Memory of the write buffer (allocated at the first append).
  size_t buffer_bytes() const { return buffer_.capacity(); }
  uint64_t file_bytes() const { return file_records_ * options_.row_bytes; }
  uint64_t live_bytes() const { return uint64_t{index_.size()} * options_.row_bytes; }
  uint64_t stale_bytes() const { return file_bytes() - live_bytes(); }

  void Prefetch(uint64_t key) const { index_.Prefetch(key); }
  // The address of key's live record, or kNone.
  uint32_t Find(uint64_t key) const { return index_.Find(key); }

  // Reads the records at addrs[i] into out + i * row_bytes, all at once.
  // DataLoss when a segment is shorter than an address says (a damaged or
  // removed file); out is then partly written.
  absl::Status Read(std::span<const uint32_t> addrs, std::byte* out);

  // Where a record is in its file, for a read without the stripe's lock
  // (ReadUnlocked). `seq` tells a record from a later one at the same
  // address (a segment slot is reused after its file is removed).
  struct Location {
    int fd = -1;
    int direct_fd = -1;  // the same file opened with O_DIRECT, or -1
    uint64_t offset = 0;
    uint64_t seq = 0;
  };
  // The location of the record at `addr`, or false when it is still in the
  // write buffer (read it with Read).
  bool Locate(uint32_t addr, Location* location) const;
  // Whether the record at `addr` is the one a Location of `seq` named.
  bool StillAt(uint32_t addr, uint64_t seq) const { return segments_[SlotOf(addr)].seq == seq; }
  // Files removed (compacted, or every record stale) are unlinked at once
  // but their descriptors stay open until CloseRetired, so that a
  // ReadUnlocked in flight never reads a descriptor number the process
  // has since given to another file or socket. The caller closes them
  // when no such read can be in flight; their disk space is freed then.
  void CloseRetired();
  size_t retired() const { return retired_fds_.size(); }
  // Reads row_bytes at each location into out + i * row_bytes, all in
  // flight at once, without touching any log: for reads between releasing
  // a stripe's lock and taking it again. Each is tried first as a buffered
  // read that only the page cache may answer (RWF_NOWAIT); the rest go to
  // the device as O_DIRECT reads of the pages that hold them, Ring::kDepth
  // at a time. (Buffered reads that missed the cache, left to the kernel,
  // reached a quarter of the device's IOPS when a request's records were
  // in a few files.) A location whose file was removed
  // meanwhile may read garbage or fail; ok[i] says which reads completed
  // whole, and the caller checks StillAt before using a row.
  static void ReadUnlocked(std::span<const Location> locations, size_t row_bytes, std::byte* out,
                           std::vector<bool>* ok);

  // Appends a copy of `row` (its key in its first 8 bytes), which becomes
  // the key's live record; an older one becomes stale. ResourceExhausted
  // (disk full, the free-disk guard, or no address left) or Unavailable
  // (other I/O errors), in which case nothing changed: rows appended before
  // stay readable, in the buffer if they could not be written.
  absl::Status Append(const std::byte* row);

  // The key's record, if any, becomes stale.
  void Erase(uint64_t key);

  // Whether stale records passed Options::max_stale_fraction, or a
  // compaction is under way.
  bool CompactionDue() const;
  // Compacts up to `bytes` (at least one record) of the segment with the
  // fewest live records: its live records are appended again, and once all
  // of it is done the file is removed. `keep(row, addr)` (addr: where the
  // record is now) may change a record's bytes after its key before it is
  // appended again. Errors as Read and Append; a failed step leaves the
  // segment whole and is resumed later.
  template <typename Keep>
  absl::Status CompactStep(size_t bytes, Keep keep);
  absl::Status CompactStep(size_t bytes) {
    return CompactStep(bytes, [](std::byte*, uint32_t) {});
  }

  // A point in the log: records appended later compare greater.
  struct Position {
    uint64_t seq = 0;     // segment sequence number
    uint32_t record = 0;  // records before it in that segment
    friend bool operator<(const Position& a, const Position& b) {
      return a.seq != b.seq ? a.seq < b.seq : a.record < b.record;
    }
  };
  // Where the next append goes.
  Position End() const;
  // Where the record at `addr` is.
  Position PositionOf(uint32_t addr) const;

  // Calls fn(row, addr) for every live record appended at or after `from`
  // (the whole log by default), reading the segments in large sequential
  // chunks; fn may not append or erase. The order is by segment slot. Errors
  // as Read.
  template <typename Fn>
  absl::Status ForEachLive(Fn fn, Position from);
  // (Not a default argument: clang cannot use Position's member
  // initializers before RowLog is complete.)
  template <typename Fn>
  absl::Status ForEachLive(Fn fn) {
    return ForEachLive(std::move(fn), Position{});
  }

  struct Counters {
    uint64_t reads = 0, read_bytes = 0;      // records read by Read
    uint64_t writes = 0, written_bytes = 0;  // pwrites of the buffer
    uint64_t compacted_segments = 0, compacted_bytes = 0, compacted_live_rows = 0;
  };
  const Counters& counters() const { return counters_; }
  // Bytes of the segment being compacted that are done, and its size (0, 0
  // when none is).
  std::pair<uint64_t, uint64_t> compaction_progress() const;

 private:
  struct Segment {
    int fd = -1;
    int direct_fd = -1;  // for reads that miss the page cache; -1 where O_DIRECT is refused
    uint64_t seq = 0;
    uint32_t records = 0;  // appended, in the file or the buffer
    uint32_t live = 0;
  };

  explicit RowLog(const Options& options);
  std::string FileOf(uint32_t slot) const;
  uint32_t SlotOf(uint32_t addr) const { return addr / records_per_segment_; }
  uint32_t RecordOf(uint32_t addr) const { return addr % records_per_segment_; }
  // Writes the buffer to the open segment.
  absl::Status FlushBuffer();
  // Opens a new segment in the lowest free slot.
  absl::Status OpenSegment();
  absl::Status CheckFreeDisk(uint64_t more) const;
  void RemoveSegment(uint32_t slot);
  // Reads `count` records of segment `slot` from record `first` into out
  // (from the buffer where they are still there).
  absl::Status ReadRange(uint32_t slot, uint32_t first, uint32_t count, std::byte* out);
  // Picks the segment to compact, or returns false.
  bool PickVictim();

  const Options options_;
  const uint32_t records_per_segment_;
  const uint32_t max_slots_;
  KeyIndex index_{kIndexLoadPercent, kIndexGrowthPercent};
  std::vector<Segment> segments_;  // by slot; fd < 0: free
  std::vector<uint32_t> free_slots_;
  uint64_t next_seq_ = 1;
  uint64_t file_records_ = 0;  // records in all segments, live or stale
  int64_t open_ = -1;          // the slot appended to
  // Records [buffer_first_, segments_[open_].records) of the open segment.
  std::vector<std::byte> buffer_;
  uint32_t buffer_first_ = 0;
  size_t buffer_used_ = 0;
  // A compaction under way: the slot, and its records done.
  int64_t victim_ = -1;
  uint32_t victim_done_ = 0;
  std::vector<std::byte> scan_;  // reused by CompactStep and ForEachLive
  std::vector<int> retired_fds_;
  Counters counters_;
};

template <typename Keep>
absl::Status RowLog::CompactStep(size_t bytes, Keep keep) {
  if (victim_ < 0 && !PickVictim()) return absl::OkStatus();
  const auto slot = static_cast<uint32_t>(victim_);
  const size_t rb = options_.row_bytes;
  const uint32_t total = segments_[slot].records;
  const auto n = static_cast<uint32_t>(
      std::min<uint64_t>(total - victim_done_, std::max<size_t>(1, bytes / rb)));
  scan_.resize(size_t{n} * rb);
  if (absl::Status s = ReadRange(slot, victim_done_, n, scan_.data()); !s.ok()) return s;
  const uint32_t base = slot * records_per_segment_ + victim_done_;
  for (uint32_t i = 0; i < n; ++i) {
    std::byte* row = scan_.data() + size_t{i} * rb;
    uint64_t key;
    std::memcpy(&key, row, sizeof(key));
    if (index_.Find(key) != base + i) continue;
    keep(row, base + i);
    if (absl::Status s = Append(row); !s.ok()) {
      victim_done_ += i;  // the records before i moved; resume at i
      return s;
    }
    ++counters_.compacted_live_rows;
  }
  victim_done_ += n;
  counters_.compacted_bytes += uint64_t{n} * rb;
  if (victim_done_ == total) {
    RemoveSegment(slot);
    ++counters_.compacted_segments;
    victim_ = -1;
    victim_done_ = 0;
  }
  return absl::OkStatus();
}

template <typename Fn>
absl::Status RowLog::ForEachLive(Fn fn, Position from) {
  const size_t rb = options_.row_bytes;
  const uint32_t chunk = std::max<uint32_t>(1, static_cast<uint32_t>((size_t{4} << 20) / rb));
  std::vector<std::byte> scan;  // not scan_: fn may run a compaction step's caller
  for (uint32_t slot = 0; slot < segments_.size(); ++slot) {
    const Segment& seg = segments_[slot];
    if (seg.fd < 0 || seg.live == 0 || seg.seq < from.seq) continue;
    const uint32_t first = seg.seq == from.seq ? from.record : 0;
    for (uint32_t at = first; at < seg.records; at += chunk) {
      const uint32_t n = std::min(chunk, seg.records - at);
      scan.resize(size_t{n} * rb);
      if (absl::Status s = ReadRange(slot, at, n, scan.data()); !s.ok()) return s;
      const uint32_t base = slot * records_per_segment_ + at;
      for (uint32_t i = 0; i < n; ++i) {
        const std::byte* row = scan.data() + size_t{i} * rb;
        uint64_t key;
        std::memcpy(&key, row, sizeof(key));
        if (index_.Find(key) == base + i) fn(row, base + i);
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace ctrps

#endif  // CTRPS_PS_ROW_LOG_H_
