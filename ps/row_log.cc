#include "ps/row_log.h"

#include <fcntl.h>
#include <liburing.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status.h"

namespace ctrps {
namespace {

// One io_uring per thread (each server thread reads for its own requests).
// Where the kernel refuses io_uring (seccomp, io_uring_disabled), reads fall
// back to pread, one at a time.
class Ring {
 public:
  static constexpr unsigned kDepth = 256;
  Ring() { ok_ = io_uring_queue_init(kDepth, &ring_, 0) == 0; }
  ~Ring() {
    if (ok_) io_uring_queue_exit(&ring_);
  }
  bool ok() const { return ok_; }
  io_uring* get() { return &ring_; }

 private:
  io_uring ring_{};
  bool ok_ = false;
};

Ring& ThreadRing() {
  thread_local Ring ring;
  return ring;
}

absl::Status ShortRead(const std::string& file, uint64_t offset, int64_t got, size_t want) {
  if (got < 0)
    return ErrnoError(file, absl::StrCat("read at byte ", offset), static_cast<int>(-got));
  return absl::DataLossError(
      absl::StrFormat("%s: record at byte %d: read %d of %d bytes (file damaged or removed)", file,
                      offset, got, want));
}

}  // namespace

absl::StatusOr<std::unique_ptr<RowLog>> RowLog::Create(const Options& options) {
  if (options.row_bytes < 8) {
    return absl::InvalidArgumentError(
        absl::StrCat("row log ", options.name, ": rows of ", options.row_bytes,
                     " bytes; they must hold at least their 8-byte key"));
  }
  if (options.segment_bytes < 2 * options.row_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("row log ", options.name, ": segments of ",
                                                   options.segment_bytes,
                                                   " bytes hold fewer than two rows"));
  }
  return std::unique_ptr<RowLog>(new RowLog(options));
}

RowLog::RowLog(const Options& options)
    : options_(options),
      records_per_segment_(static_cast<uint32_t>(std::min<size_t>(
          options.segment_bytes / options.row_bytes, size_t{KeyIndex::kNone - 256} / 2))),
      max_slots_((KeyIndex::kNone - 256) / records_per_segment_) {}

RowLog::~RowLog() {
  CloseRetired();
  for (uint32_t slot = 0; slot < segments_.size(); ++slot) {
    if (segments_[slot].fd >= 0) {
      close(segments_[slot].fd);
      if (segments_[slot].direct_fd >= 0) close(segments_[slot].direct_fd);
      unlink(FileOf(slot).c_str());
    }
  }
}

std::string RowLog::FileOf(uint32_t slot) const {
  return absl::StrCat(options_.dir, "/", options_.name, ".", slot);
}

RowLog::Position RowLog::End() const {
  if (open_ < 0) return {next_seq_, 0};
  return {segments_[open_].seq, segments_[open_].records};
}

RowLog::Position RowLog::PositionOf(uint32_t addr) const {
  return {segments_[SlotOf(addr)].seq, RecordOf(addr)};
}

std::pair<uint64_t, uint64_t> RowLog::compaction_progress() const {
  if (victim_ < 0) return {0, 0};
  return {uint64_t{victim_done_} * options_.row_bytes,
          uint64_t{segments_[victim_].records} * options_.row_bytes};
}

absl::Status RowLog::CheckFreeDisk(uint64_t more) const {
  if (options_.min_free_disk_bytes == 0) return absl::OkStatus();
  struct statvfs vfs;
  if (statvfs(options_.dir.c_str(), &vfs) != 0) {
    return ErrnoError(options_.dir, "statvfs");
  }
  const uint64_t free_bytes = uint64_t{vfs.f_bavail} * vfs.f_frsize;
  if (free_bytes < options_.min_free_disk_bytes + more) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "%s: %d bytes free, under the guard of %d bytes kept free (cluster.min_free_disk_mb)",
        options_.dir, free_bytes, options_.min_free_disk_bytes));
  }
  return absl::OkStatus();
}

absl::Status RowLog::OpenSegment() {
  uint32_t slot;
  if (!free_slots_.empty()) {
    auto lowest = std::min_element(free_slots_.begin(), free_slots_.end());
    slot = *lowest;
    *lowest = free_slots_.back();
    free_slots_.pop_back();
  } else if (segments_.size() < max_slots_) {
    slot = static_cast<uint32_t>(segments_.size());
    segments_.emplace_back();
  } else {
    return absl::ResourceExhaustedError(
        absl::StrCat("row log ", options_.name, ": all ", max_slots_, " segment slots in use"));
  }
  const std::string file = FileOf(slot);
  const int fd = open(file.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    const int err = errno;
    free_slots_.push_back(slot);
    return ErrnoError(absl::StrCat("row log ", options_.name), absl::StrCat("creating ", file),
                      err);
  }
  // Reads of single records are random: no readahead, which would fetch
  // 128 KB of page cache for each 4 KB page a record needs. (Scans read
  // megabytes at a time and need none either.)
  (void)posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM);
  // -1 where the file system refuses O_DIRECT (tmpfs): reads then stay
  // buffered.
  const int direct_fd = open(file.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC);
  segments_[slot] =
      Segment{.fd = fd, .direct_fd = direct_fd, .seq = next_seq_++, .records = 0, .live = 0};
  open_ = slot;
  buffer_first_ = 0;
  buffer_used_ = 0;
  return absl::OkStatus();
}

absl::Status RowLog::FlushBuffer() {
  if (buffer_used_ == 0) return absl::OkStatus();
  if (absl::Status s = CheckFreeDisk(buffer_used_); !s.ok()) return s;
  const Segment& seg = segments_[open_];
  const uint64_t offset = uint64_t{buffer_first_} * options_.row_bytes;
  size_t done = 0;
  while (done < buffer_used_) {
    const ssize_t n = pwrite(seg.fd, buffer_.data() + done, buffer_used_ - done,
                             static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(absl::StrCat("row log ", options_.name),
                        absl::StrCat("writing ", FileOf(static_cast<uint32_t>(open_))));
    }
    done += static_cast<size_t>(n);
  }
  ++counters_.writes;
  counters_.written_bytes += buffer_used_;
  buffer_first_ = seg.records;
  buffer_used_ = 0;
  return absl::OkStatus();
}

absl::Status RowLog::Append(const std::byte* row) {
  const size_t rb = options_.row_bytes;
  if (open_ >= 0 && segments_[open_].records == records_per_segment_) {
    if (absl::Status s = FlushBuffer(); !s.ok()) return s;
    open_ = -1;
  }
  if (open_ < 0) {
    if (absl::Status s = OpenSegment(); !s.ok()) return s;
  }
  if (buffer_.empty()) {
    buffer_.resize(
        std::max<size_t>(1, std::min(options_.buffer_bytes, options_.segment_bytes) / rb) * rb);
  }
  if (buffer_used_ + rb > buffer_.size()) {
    if (absl::Status s = FlushBuffer(); !s.ok()) return s;
  }
  Segment& seg = segments_[open_];
  std::memcpy(buffer_.data() + buffer_used_, row, rb);
  buffer_used_ += rb;
  const uint32_t addr = static_cast<uint32_t>(open_) * records_per_segment_ + seg.records;
  ++seg.records;
  ++seg.live;
  ++file_records_;
  uint64_t key;
  std::memcpy(&key, row, sizeof(key));
  if (const uint32_t old = index_.Find(key); old != kNone) {
    const uint32_t old_slot = SlotOf(old);
    if (--segments_[old_slot].live == 0 && old_slot != open_ && old_slot != victim_)
      RemoveSegment(old_slot);
  }
  index_.Set(key, addr);
  return absl::OkStatus();
}

void RowLog::Erase(uint64_t key) {
  const uint32_t old = index_.Find(key);
  if (old == kNone) return;
  index_.Erase(key);
  const uint32_t slot = SlotOf(old);
  if (--segments_[slot].live == 0 && slot != open_ && slot != victim_) RemoveSegment(slot);
  index_.ShrinkIfSparse();
}

void RowLog::CloseRetired() {
  for (int fd : retired_fds_) close(fd);
  retired_fds_.clear();
}

void RowLog::RemoveSegment(uint32_t slot) {
  Segment& seg = segments_[slot];
  retired_fds_.push_back(seg.fd);
  if (seg.direct_fd >= 0) retired_fds_.push_back(seg.direct_fd);
  unlink(FileOf(slot).c_str());
  file_records_ -= seg.records;
  seg = Segment{};
  free_slots_.push_back(slot);
}

bool RowLog::CompactionDue() const {
  if (victim_ >= 0) return true;
  const uint64_t stale = stale_bytes();
  return stale >= options_.segment_bytes &&
         static_cast<double>(stale) >
             options_.max_stale_fraction * static_cast<double>(file_bytes());
}

bool RowLog::PickVictim() {
  if (!CompactionDue()) return false;
  int64_t best = -1;
  double best_live = 2;
  for (uint32_t slot = 0; slot < segments_.size(); ++slot) {
    const Segment& seg = segments_[slot];
    if (seg.fd < 0 || slot == open_ || seg.records == 0) continue;
    const double live = static_cast<double>(seg.live) / seg.records;
    if (live < best_live) {
      best_live = live;
      best = slot;
    }
  }
  // A victim mostly live would only move its rows; wait for more to go stale.
  if (best < 0 || best_live > 0.9) return false;
  victim_ = best;
  victim_done_ = 0;
  return true;
}

absl::Status RowLog::ReadRange(uint32_t slot, uint32_t first, uint32_t count, std::byte* out) {
  const size_t rb = options_.row_bytes;
  const Segment& seg = segments_[slot];
  uint32_t from_file = count;
  if (slot == open_ && first + count > buffer_first_) {
    const uint32_t in_buffer_from = std::max(first, buffer_first_);
    from_file = in_buffer_from - first;
    std::memcpy(out + size_t{from_file} * rb,
                buffer_.data() + size_t{in_buffer_from - buffer_first_} * rb,
                size_t{first + count - in_buffer_from} * rb);
  }
  size_t done = 0;
  const size_t want = size_t{from_file} * rb;
  const uint64_t offset = uint64_t{first} * rb;
  while (done < want) {
    const ssize_t n = pread(seg.fd, out + done, want - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return ShortRead(FileOf(slot), offset + done, n < 0 ? -errno : 0, want - done);
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

bool RowLog::Locate(uint32_t addr, Location* location) const {
  const uint32_t slot = SlotOf(addr), rec = RecordOf(addr);
  if (slot >= segments_.size() || segments_[slot].fd < 0 || rec >= segments_[slot].records)
    return false;
  if (slot == open_ && rec >= buffer_first_) return false;
  *location = {segments_[slot].fd, segments_[slot].direct_fd, uint64_t{rec} * options_.row_bytes,
               segments_[slot].seq};
  return true;
}

namespace {

// Keeps up to Ring::kDepth reads in flight over `count` jobs: prep(i, sqe)
// prepares job i, done(i, res) takes its result. Returns false if the ring
// failed (jobs not done are left undone).
template <typename Prep, typename Done>
bool RunRing(Ring& ring, size_t count, Prep prep, Done done) {
  size_t next = 0, in_flight = 0;
  while (next < count || in_flight > 0) {
    while (next < count && in_flight < Ring::kDepth) {
      io_uring_sqe* sqe = io_uring_get_sqe(ring.get());
      if (sqe == nullptr) break;
      if (!prep(next, sqe)) {  // nothing to read for this job
        io_uring_prep_nop(sqe);
      }
      io_uring_sqe_set_data64(sqe, next);
      ++next;
      ++in_flight;
    }
    int rc = io_uring_submit_and_wait(ring.get(), 1);
    if (rc < 0 && rc != -EINTR) {
      // Collect what was submitted before giving up.
      io_uring_cqe* c = nullptr;
      while (in_flight > 0 && io_uring_wait_cqe(ring.get(), &c) == 0) {
        done(io_uring_cqe_get_data64(c), c->res);
        io_uring_cqe_seen(ring.get(), c);
        --in_flight;
      }
      return false;
    }
    io_uring_cqe* cqe = nullptr;
    unsigned head, seen = 0;
    io_uring_for_each_cqe(ring.get(), head, cqe) {
      done(io_uring_cqe_get_data64(cqe), cqe->res);
      ++seen;
    }
    io_uring_cq_advance(ring.get(), seen);
    in_flight -= seen;
  }
  return true;
}

constexpr size_t kDirectAlign = 4096;

}  // namespace

void RowLog::ReadUnlocked(std::span<const Location> locations, size_t row_bytes, std::byte* out,
                          std::vector<bool>* ok) {
  ok->assign(locations.size(), false);
  Ring& ring = ThreadRing();
  auto pread_one = [&](size_t i) {
    const ssize_t n = pread(locations[i].fd, out + i * row_bytes, row_bytes,
                            static_cast<off_t>(locations[i].offset));
    (*ok)[i] = n == static_cast<ssize_t>(row_bytes);
  };
  if (!ring.ok()) {
    for (size_t i = 0; i < locations.size(); ++i) pread_one(i);
    return;
  }
  // 1. What the page cache holds, without waiting for the device.
  thread_local std::vector<uint32_t> missed;
  missed.clear();
  const bool ran = RunRing(
      ring, locations.size(),
      [&](size_t i, io_uring_sqe* sqe) {
        io_uring_prep_read(sqe, locations[i].fd, out + i * row_bytes,
                           static_cast<unsigned>(row_bytes), locations[i].offset);
        sqe->rw_flags = RWF_NOWAIT;
        return true;
      },
      [&](uint64_t i, int res) {
        if (res == static_cast<int>(row_bytes)) {
          (*ok)[i] = true;
        } else {
          missed.push_back(static_cast<uint32_t>(i));
        }
      });
  if (!ran) return;
  if (missed.empty()) return;
  // 2. The rest from the device: the aligned pages holding each record,
  // into a buffer per ring slot.
  const size_t span = ((row_bytes + kDirectAlign - 1) / kDirectAlign + 1) * kDirectAlign;
  struct Freer {
    void operator()(std::byte* p) const { std::free(p); }
  };
  thread_local std::unique_ptr<std::byte, Freer> pages;
  thread_local size_t pages_bytes = 0;
  if (pages_bytes < span * Ring::kDepth) {
    pages.reset(static_cast<std::byte*>(std::aligned_alloc(kDirectAlign, span * Ring::kDepth)));
    pages_bytes = span * Ring::kDepth;
  }
  // Ring slot of each job in flight: jobs take the slots of jobs done.
  thread_local std::vector<uint32_t> slot_of, free_slots;
  slot_of.assign(missed.size(), 0);
  free_slots.clear();
  for (uint32_t sl = 0; sl < Ring::kDepth; ++sl) free_slots.push_back(Ring::kDepth - 1 - sl);
  std::vector<bool> buffered(missed.size(), false);
  RunRing(
      ring, missed.size(),
      [&](size_t m, io_uring_sqe* sqe) {
        const Location& at = locations[missed[m]];
        if (at.direct_fd < 0) {
          buffered[m] = true;
          return false;
        }
        const uint32_t sl = free_slots.back();
        free_slots.pop_back();
        slot_of[m] = sl;
        const uint64_t first = at.offset / kDirectAlign * kDirectAlign;
        const uint64_t last =
            (at.offset + row_bytes + kDirectAlign - 1) / kDirectAlign * kDirectAlign;
        io_uring_prep_read(sqe, at.direct_fd, pages.get() + size_t{sl} * span,
                           static_cast<unsigned>(last - first), first);
        return true;
      },
      [&](uint64_t m, int res) {
        if (buffered[m]) return;
        const Location& at = locations[missed[m]];
        const uint32_t sl = slot_of[m];
        const uint64_t skip = at.offset % kDirectAlign;
        if (res >= static_cast<int>(skip + row_bytes)) {
          std::memcpy(out + size_t{missed[m]} * row_bytes, pages.get() + size_t{sl} * span + skip,
                      row_bytes);
          (*ok)[missed[m]] = true;
        }
        free_slots.push_back(sl);
      });
  // Files without O_DIRECT, and direct reads that failed: buffered, one by one.
  for (size_t m = 0; m < missed.size(); ++m) {
    if (!(*ok)[missed[m]]) pread_one(missed[m]);
  }
}

absl::Status RowLog::Read(std::span<const uint32_t> addrs, std::byte* out) {
  const size_t rb = options_.row_bytes;
  counters_.reads += addrs.size();
  counters_.read_bytes += addrs.size() * rb;
  // Records still in the write buffer are copied; the rest are read from
  // their files, all in flight at once.
  thread_local std::vector<uint32_t> from_file;
  from_file.clear();
  for (size_t i = 0; i < addrs.size(); ++i) {
    const uint32_t slot = SlotOf(addrs[i]), rec = RecordOf(addrs[i]);
    if (slot >= segments_.size() || segments_[slot].fd < 0 || rec >= segments_[slot].records) {
      return absl::DataLossError(
          absl::StrCat("row log ", options_.name, ": no record at address ", addrs[i]));
    }
    if (slot == open_ && rec >= buffer_first_) {
      std::memcpy(out + i * rb, buffer_.data() + size_t{rec - buffer_first_} * rb, rb);
    } else {
      from_file.push_back(static_cast<uint32_t>(i));
    }
  }
  Ring& ring = ThreadRing();
  absl::Status status;
  auto check = [&](size_t i, int64_t res) {
    if (res != static_cast<int64_t>(rb) && status.ok()) {
      status = ShortRead(FileOf(SlotOf(addrs[i])), uint64_t{RecordOf(addrs[i])} * rb, res, rb);
    }
  };
  const bool ran = ring.ok() && RunRing(
                                    ring, from_file.size(),
                                    [&](size_t j, io_uring_sqe* sqe) {
                                      const uint32_t i = from_file[j];
                                      io_uring_prep_read(sqe, segments_[SlotOf(addrs[i])].fd,
                                                         out + i * rb, static_cast<unsigned>(rb),
                                                         uint64_t{RecordOf(addrs[i])} * rb);
                                      return true;
                                    },
                                    [&](uint64_t j, int res) { check(from_file[j], res); });
  if (!ran) {
    // No ring, or it failed: pread the ones not read yet, one at a time.
    status = absl::OkStatus();
    for (uint32_t i : from_file) {
      const ssize_t n = pread(segments_[SlotOf(addrs[i])].fd, out + i * rb, rb,
                              static_cast<off_t>(uint64_t{RecordOf(addrs[i])} * rb));
      check(i, n < 0 ? -errno : n);
    }
  }
  return status;
}

}  // namespace ctrps
