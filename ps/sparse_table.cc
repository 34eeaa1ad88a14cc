#include "ps/sparse_table.h"

#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#if defined(__AVX__)
#include <immintrin.h>
#endif

#include "absl/cleanup/cleanup.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/hash.h"
#include "common/status.h"
#include "glog/logging.h"
#include "ps/key_index.h"
#include "ps/prefetch.h"

namespace ctrps {
namespace {

constexpr uint32_t kNoSlot = KeyIndex::kNone;
// Real slots stay below this; the values above are the index's answers.
constexpr uint32_t kMaxSlot = KeyIndex::kNone - 255;
// Row flags (common/row_format.h).
using row_flags::kDirty, row_flags::kInLog, row_flags::kInStore, row_flags::kLogCurrent,
    row_flags::kReferenced, row_flags::kUsed;
constexpr uint32_t kStoreFlags = kDirty | kInStore;
// A stripe's keys in a block are served in windows of up to this many.
// Lookups: each window's index entries are prefetched in a loop of
// prefetches alone, then looked up. Then the rows (and a push's gradients),
// again a window at a time: prefetched in a loop of their own, then read or
// updated. Random rows of a big table each cost a page walk, and a core
// keeps only so many in flight; prefetches a fixed distance ahead inside the
// lookup or update loop kept far fewer in flight than these loops do
// (`vm_probe --parts walks`; the table's pulls 1.3-1.4x, pushes 1.5x,
// docs/BENCHMARKS.md, "What each mechanism buys"). For dim 16 with Adagrad a window's lines
// (index entry, row, gradient) are about 80 KB, inside L2 (where the
// prefetches put them, ps/prefetch.h); much wider
// rows spill a window's early lines out of L2 before they are used.
constexpr uint32_t kWindowKeys = 256;

// In a loop over [b, e) that reads or updates position j: when j starts a
// window (counting from b), calls prefetch(k) for every k of that window
// first, in a loop with nothing else in it.
template <typename Prefetch>
inline void PrefetchWindowAt(uint32_t j, uint32_t b, uint32_t e, Prefetch prefetch) {
  if ((j - b) % kWindowKeys != 0) return;
  for (uint32_t k = j, end = std::min(e, j + kWindowKeys); k < end; ++k) prefetch(k);
}
constexpr uint32_t kMaxMissedSteps = 1000;
// Rows live in chunks that double in size: chunk c holds kBaseRows << c rows
// starting at slot kBaseRows * (2^c - 1). Slots never move, small tables stay
// small, and big chunks get huge pages.
constexpr uint32_t kBaseRows = 256;
constexpr int kMaxChunks = 24;  // 256 * (2^24 - 1) slots: more than a u32 index needs

inline int ChunkOf(uint32_t slot) { return 63 - __builtin_clzll(slot / kBaseRows + 1); }
inline uint32_t ChunkStart(int c) { return kBaseRows * ((1u << c) - 1); }

// A pull writes each row to a random place in the caller's buffer, far
// bigger than L2: an ordinary store first reads the line in. Where the rows
// are whole, aligned lines (SparseTable::kLineBytes), they are written with
// non-temporal stores, which skip that read; StreamFence orders them before
// the reply. (Without AVX, ordinary stores.)
#if defined(__AVX__)
inline void StreamLines(float* dst, const float* src, int dim) {
  for (int d = 0; d < dim; d += 8) _mm256_stream_ps(dst + d, _mm256_loadu_ps(src + d));
}
inline void StreamFence() { _mm_sfence(); }
#else
inline void StreamLines(float* dst, const float* src, int dim) {
  std::memcpy(dst, src, sizeof(float) * dim);
}
inline void StreamFence() {}
#endif

// Scratch reused by every request on a thread: no allocation per request
// once warm.
struct Scratch {
  // The block being served (in its KeyGroups): key positions grouped by
  // stripe, stripe s at [begin[s], begin[s + 1]).
  const uint32_t* order = nullptr;
  const uint32_t* begin = nullptr;
  std::vector<uint32_t> slots;    // slot per grouped position
  std::vector<uint32_t> further;  // grouped positions whose lookup goes past the home line
  std::vector<uint64_t> miss_keys;
  std::vector<uint32_t> miss_pos;
  std::vector<uint32_t> miss_slots;
  std::vector<uint64_t> store_keys;  // misses that were not in the log either
  std::vector<uint32_t> store_pos;
  // Misses found in the log: their grouped positions, addresses, and the
  // rows read.
  std::vector<uint32_t> log_pos;
  std::vector<uint32_t> log_addrs;
  std::vector<std::byte> log_rows;
  // Promote's store request and reply, kept so that their strings' buffers
  // are reused: a loaded row read from the store costs no allocation.
  std::vector<std::string> disk_keys;
  std::vector<std::string_view> disk_views;
  std::vector<std::string> disk_values;
  std::vector<bool> disk_found;
};
thread_local Scratch tls_scratch;

// A request's rows found in the logs, read before it is served
// (SparseTable::ReadAhead), on the thread that serves it.
struct Ahead {
  const void* table = nullptr;                 // whose request; null: none
  absl::flat_hash_map<uint64_t, uint32_t> at;  // key -> i
  std::vector<uint32_t> addrs;
  std::vector<RowLog::Location> locations;
  std::vector<std::byte> rows;
  std::vector<bool> ok;
};
thread_local Ahead tls_ahead;

uint32_t SteadySeconds() {
  static const auto start = std::chrono::steady_clock::now();
  return static_cast<uint32_t>(
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - start)
          .count());
}

SparseTable::Options WithDefaultClock(SparseTable::Options options) {
  if (!options.now_seconds) options.now_seconds = SteadySeconds;
  return options;
}

}  // namespace

struct SparseTable::Stripe {
  Stripe(size_t row_bytes, int id) : row_bytes(row_bytes), id(id) {}
  ~Stripe() {
    for (int c = 0; c < kMaxChunks; ++c) FreeBlock(chunks[c], (size_t{kBaseRows} << c) * row_bytes);
  }
  const size_t row_bytes;
  const int id;
  absl::Mutex mu;
  KeyIndex index ABSL_GUARDED_BY(mu);
  std::byte* chunks[kMaxChunks] = {};
  uint32_t num_slots ABSL_GUARDED_BY(mu) = 0;  // slots ever handed out
  std::vector<uint32_t> free_slots ABSL_GUARDED_BY(mu);
  uint32_t clock_hand ABSL_GUARDED_BY(mu) = 0;
  int64_t charged_index_bytes ABSL_GUARDED_BY(mu) = 0;  // index memory counted in the budget
  absl::flat_hash_map<uint64_t, uint32_t> pending ABSL_GUARDED_BY(mu);  // admission counts
  std::vector<uint32_t> victims ABSL_GUARDED_BY(mu);                    // reused by each spill
  std::unique_ptr<RowLog> log ABSL_GUARDED_BY(mu);    // created by the first spill
  int64_t charged_log_bytes ABSL_GUARDED_BY(mu) = 0;  // log index and buffer counted in the budget
  // The log's end when the stripe was last flushed to the store: records
  // before it were written there if dirty.
  RowLog::Position flushed ABSL_GUARDED_BY(mu);
  uint64_t in_both ABSL_GUARDED_BY(mu) = 0;  // rows in memory with kInLog
};

absl::StatusOr<std::unique_ptr<SparseTable>> SparseTable::Create(const TableConfig& config,
                                                                 const Options& options) {
  if (config.dim() <= 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("table \"%s\" has dim %d; it must be > 0", config.name(), config.dim()));
  }
  if (options.budget != nullptr && options.budget->limited() && options.spill_dir.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "table \"", config.name(), "\": a memory limit needs a directory to spill rows to"));
  }
  auto optimizer = SparseOptimizer::Create(config.optimizer(), config.dim());
  if (!optimizer.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("table \"", config.name(), "\": ", optimizer.status().message()));
  }
  return std::unique_ptr<SparseTable>(new SparseTable(config, options, std::move(*optimizer)));
}

SparseTable::SparseTable(const TableConfig& config, const Options& options,
                         std::unique_ptr<SparseOptimizer> optimizer)
    : config_(config),
      options_(WithDefaultClock(options)),
      optimizer_(std::move(optimizer)),
      dim_(config.dim()),
      state_dim_(optimizer_->state_dim()),
      row_bytes_(sizeof(RowMeta) + sizeof(float) * (dim_ + state_dim_)),
      charge_bytes_(static_cast<int64_t>(row_bytes_) + kBookkeepingBytesPerRow),
      admission_(config.min_count() > 1 || config.admit_probability() < 1.0f),
      zeros_(config.dim(), 0.0f) {
  for (int i = 0; i < kNumStripes; ++i) stripes_.push_back(std::make_unique<Stripe>(row_bytes_, i));
}

SparseTable::~SparseTable() {
  if (options_.budget == nullptr) return;
  int64_t bytes = 0;
  for (auto& s : stripes_) {
    absl::MutexLock lock(&s->mu);
    bytes += s->index.size() * charge_bytes_ + s->charged_index_bytes + s->charged_log_bytes;
  }
  options_.budget->Add(-bytes);
}

void SparseTable::PrefetchRow(const Stripe& s, uint32_t slot, size_t bytes) const {
  if (slot < kMaxSlot) PrefetchBytes(MetaOf(s, slot), bytes);
}

RowMeta* SparseTable::MetaOf(const Stripe& s, uint32_t slot) const {
  const int c = ChunkOf(slot);
  return reinterpret_cast<RowMeta*>(s.chunks[c] + (slot - ChunkStart(c)) * row_bytes_);
}

float* SparseTable::WeightsOf(const Stripe& s, uint32_t slot) const {
  return reinterpret_cast<float*>(reinterpret_cast<std::byte*>(MetaOf(s, slot)) + sizeof(RowMeta));
}

uint32_t SparseTable::AllocSlot(Stripe& s, uint64_t key) {
  uint32_t slot;
  if (!s.free_slots.empty()) {
    slot = s.free_slots.back();
    s.free_slots.pop_back();
  } else {
    slot = s.num_slots++;
    const int c = ChunkOf(slot);
    if (s.chunks[c] == nullptr) {
      s.chunks[c] = static_cast<std::byte*>(AllocateBlock((size_t{kBaseRows} << c) * row_bytes_));
    }
  }
  RowMeta* meta = MetaOf(s, slot);
  meta->key = key;
  meta->flags = kUsed | kReferenced;
  s.index.Set(key, slot);
  rows_in_memory_.fetch_add(1, std::memory_order_relaxed);
  if (options_.budget != nullptr) options_.budget->Add(charge_bytes_ + IndexChargeChange(s));
  return slot;
}

void SparseTable::FreeSlot(Stripe& s, uint32_t slot) {
  RowMeta* meta = MetaOf(s, slot);
  // Its log record is erased (DropRow), replaced (a spill of a changed
  // row) or the row's only copy now (a spill of an unchanged one).
  if (meta->flags & kInLog) --s.in_both;
  s.index.Erase(meta->key);
  meta->flags = 0;
  s.free_slots.push_back(slot);
  rows_in_memory_.fetch_sub(1, std::memory_order_relaxed);
  if (options_.budget != nullptr) options_.budget->Add(-charge_bytes_);
}

int64_t SparseTable::IndexChargeChange(Stripe& s) {
  const auto index_bytes = static_cast<int64_t>(s.index.bytes());
  const int64_t change = index_bytes - s.charged_index_bytes;
  s.charged_index_bytes = index_bytes;
  return change;
}

int64_t SparseTable::LogChargeChange(Stripe& s) {
  const auto log_bytes =
      s.log == nullptr ? 0 : static_cast<int64_t>(s.log->index_bytes() + s.log->buffer_bytes());
  const int64_t change = log_bytes - s.charged_log_bytes;
  s.charged_log_bytes = log_bytes;
  return change;
}

void SparseTable::ShrinkSlab(Stripe& s) {
  const uint32_t rows = static_cast<uint32_t>(s.index.size());
  if (s.num_slots <= rows + rows / 4 + 4 * kBaseRows) return;
  const uint32_t target = rows + rows / 8 + kBaseRows;
  // Rows above the target move into free slots below it: there are enough,
  // since the rows take at most target - kBaseRows slots in all.
  std::vector<uint32_t> low;
  low.reserve(s.free_slots.size());
  for (uint32_t slot : s.free_slots) {
    if (slot < target) low.push_back(slot);
  }
  size_t next = 0;
  for (uint32_t slot = target; slot < s.num_slots; ++slot) {
    RowMeta* meta = MetaOf(s, slot);
    if (!(meta->flags & kUsed)) continue;
    DCHECK_LT(next, low.size());
    const uint32_t to = low[next++];
    std::memcpy(MetaOf(s, to), meta, row_bytes_);
    meta->flags = 0;
    s.index.Set(MetaOf(s, to)->key, to);
  }
  low.erase(low.begin(), low.begin() + static_cast<ptrdiff_t>(next));
  s.free_slots.swap(low);
  // Whole chunks above the target go back to the system; in the chunk the
  // target falls in, the pages past it (they fault in zeroed if used again).
  for (int c = ChunkOf(s.num_slots - 1); c >= 0 && ChunkStart(c) >= target; --c) {
    FreeBlock(s.chunks[c], (size_t{kBaseRows} << c) * row_bytes_);
    s.chunks[c] = nullptr;
  }
  const int c = ChunkOf(target);
  const size_t chunk_bytes = (size_t{kBaseRows} << c) * row_bytes_;
  if (s.chunks[c] != nullptr && chunk_bytes >= kHugeBlockThreshold) {
    constexpr size_t kPage = 4096;
    const size_t from = ((target - ChunkStart(c)) * row_bytes_ + kPage - 1) & ~(kPage - 1);
    const size_t to =
        std::min<size_t>(chunk_bytes, size_t{s.num_slots - ChunkStart(c)} * row_bytes_) &
        ~(kPage - 1);
    if (to > from) madvise(s.chunks[c] + from, to - from, MADV_DONTNEED);
  }
  s.num_slots = target;
  if (s.clock_hand >= target) s.clock_hand = 0;
}

void SparseTable::ShrinkIndex(Stripe& s) {
  if (s.index.ShrinkIfSparse() && options_.budget != nullptr)
    options_.budget->Add(IndexChargeChange(s));
}

absl::Status SparseTable::DeleteStoreCopy(const RowMeta& meta) {
  if (!(meta.flags & kInStore)) return absl::OkStatus();
  // Without this the store's copy would come back on the next miss.
  std::string k = DiskKey(meta.key);
  return options_.store->Write({{k, {}, true}});
}

absl::Status SparseTable::DropRow(Stripe& s, uint32_t slot) {
  RETURN_IF_ERROR(DeleteStoreCopy(*MetaOf(s, slot)));
  if (s.log != nullptr) {
    s.log->Erase(MetaOf(s, slot)->key);
    if (options_.budget != nullptr) options_.budget->Add(LogChargeChange(s));
  }
  FreeSlot(s, slot);
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> SparseTable::Flush() {
  if (options_.store == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("table \"", name(), "\" has no store to flush to"));
  }
  constexpr size_t kChunkRows = 1 << 16;
  uint64_t written = 0;
  std::string buffer;
  std::vector<KvStore::Op> ops;
  std::vector<RowMeta*> chunk;  // rows in memory or in the spill file
  for (auto& sp : stripes_) {
    Stripe& s = *sp;
    absl::MutexLock lock(&s.mu);
    auto write_chunk = [&]() -> absl::Status {
      if (chunk.empty()) return absl::OkStatus();
      ops.clear();
      for (size_t i = 0; i < chunk.size(); ++i) {
        const char* p = buffer.data() + i * (row_bytes_ + 12);
        ops.push_back({std::string_view(p, 12), std::string_view(p + 12, row_bytes_), false});
      }
      RETURN_IF_ERROR(options_.store->Write(ops));
      for (RowMeta* meta : chunk) meta->flags = (meta->flags & ~kDirty) | kInStore;
      written += chunk.size();
      chunk.clear();
      buffer.clear();
      return absl::OkStatus();
    };
    buffer.reserve(std::min<size_t>(kChunkRows, s.index.size()) * (row_bytes_ + 12));
    // In key order, chunk by chunk: RocksDB's memtable takes sorted inserts
    // several times faster than random ones.
    std::vector<std::pair<uint64_t, RowMeta*>> dirty;
    auto write_sorted = [&]() -> absl::Status {
      std::sort(dirty.begin(), dirty.end());
      for (const auto& [key, meta] : dirty) {
        buffer.append(DiskKey(meta->key));
        buffer.append(reinterpret_cast<const char*>(meta), row_bytes_);
        chunk.push_back(meta);
        if (chunk.size() == kChunkRows) RETURN_IF_ERROR(write_chunk());
      }
      dirty.clear();
      return write_chunk();
    };
    for (uint32_t slot = 0; slot < s.num_slots; ++slot) {
      RowMeta* meta = MetaOf(s, slot);
      if ((meta->flags & kUsed) && (meta->flags & kDirty)) dirty.emplace_back(meta->key, meta);
    }
    RETURN_IF_ERROR(write_sorted());
    // The log's dirty rows are among those appended since the last flush
    // (StoreFlagsOf): a read of those alone, not of the whole log, and in
    // chunks, so that a flush of a table far larger than memory needs a
    // chunk of memory, not the table. Their records keep their flags; the
    // new watermark says they are clean.
    if (s.log != nullptr) {
      std::vector<std::byte> from_log;
      absl::Status status;
      auto write_log_rows = [&]() -> absl::Status {
        for (size_t at = 0; at < from_log.size(); at += row_bytes_) {
          auto* meta = reinterpret_cast<RowMeta*>(from_log.data() + at);
          dirty.emplace_back(meta->key, meta);
        }
        RETURN_IF_ERROR(write_sorted());
        from_log.clear();
        return absl::OkStatus();
      };
      RETURN_IF_ERROR(s.log->ForEachLive(
          [&](const std::byte* row, uint32_t) {
            const auto* meta = reinterpret_cast<const RowMeta*>(row);
            if (!status.ok() || !(meta->flags & kDirty) || s.index.Find(meta->key) != kNoSlot)
              return;
            from_log.insert(from_log.end(), row, row + row_bytes_);
            if (from_log.size() == kChunkRows * row_bytes_) status = write_log_rows();
          },
          s.flushed));
      RETURN_IF_ERROR(status);
      RETURN_IF_ERROR(write_log_rows());
    }
    if (s.log != nullptr) s.flushed = s.log->End();
  }
  return written;
}

std::string SparseTable::DiskKey(uint64_t key) const {
  return EncodeRowKey(options_.table_id, key);
}

bool SparseTable::Expired(const RowMeta& m, uint64_t global_step, uint32_t now) const {
  if (config_.ttl_steps() > 0 && global_step > m.last_step + config_.ttl_steps()) return true;
  if (config_.ttl_seconds() > 0 && now > m.last_sec + config_.ttl_seconds()) return true;
  return false;
}

bool SparseTable::AdmittedAt(uint64_t key, uint32_t count) const {
  if (count < config_.min_count()) return false;
  if (config_.admit_probability() >= 1.0f) return true;
  // Each sighting is a fresh, deterministic draw.
  uint64_t h = Mix64(key ^ Mix64(config_.seed() + count));
  return static_cast<float>(h >> 40) * (1.0f / 16777216.0f) < config_.admit_probability();
}

absl::Status SparseTable::Promote(Stripe& s, const std::vector<uint64_t>& keys,
                                  std::vector<uint32_t>* slots, Tally& tally) {
  slots->assign(keys.size(), kNoSlot);
  if (options_.store == nullptr || store_only_rows_.load(std::memory_order_relaxed) == 0 ||
      keys.empty()) {
    return absl::OkStatus();
  }
  Scratch& scratch = tls_scratch;
  std::vector<std::string>& disk_keys = scratch.disk_keys;
  if (disk_keys.size() < keys.size()) disk_keys.resize(keys.size());
  scratch.disk_views.clear();
  for (size_t i = 0; i < keys.size(); ++i) {
    disk_keys[i] = DiskKey(keys[i]);
    scratch.disk_views.push_back(disk_keys[i]);
  }
  std::vector<std::string>& values = scratch.disk_values;
  std::vector<bool>& found = scratch.disk_found;
  RETURN_IF_ERROR(options_.store->MultiGet(scratch.disk_views, &values, &found));
  for (size_t i = 0; i < keys.size(); ++i) {
    if (!found[i]) continue;
    if (uint32_t slot = s.index.Find(keys[i]); slot != kNoSlot) {  // a repeated key
      (*slots)[i] = slot;
      continue;
    }
    if (values[i].size() != row_bytes_) {
      return absl::DataLossError(
          absl::StrFormat("table \"%s\": stored row of key %d has %d bytes, expected %d", name(),
                          keys[i], values[i].size(), row_bytes_));
    }
    // The store keeps its copy: a checkpoint rewrites this row only if it
    // changes.
    ++tally.disk_hits;
    store_only_rows_.fetch_sub(1, std::memory_order_relaxed);
    uint32_t slot = AllocSlot(s, keys[i]);
    RowMeta* meta = MetaOf(s, slot);
    std::memcpy(meta, values[i].data(), row_bytes_);
    meta->key = keys[i];
    meta->flags = kUsed | kReferenced | kInStore;
    (*slots)[i] = slot;
  }
  return absl::OkStatus();
}

uint32_t SparseTable::StoreFlagsOf(const Stripe& s, const RowMeta& meta, uint32_t addr) const {
  uint32_t flags = meta.flags & kStoreFlags;
  if ((flags & kDirty) && s.log->PositionOf(addr) < s.flushed) flags = kInStore;
  return flags;
}

uint32_t SparseTable::BringBack(Stripe& s, const std::byte* row, uint32_t addr) {
  const auto* stored = reinterpret_cast<const RowMeta*>(row);
  const uint32_t flags =
      kUsed | kReferenced | kLogCurrent | kInLog | StoreFlagsOf(s, *stored, addr);
  const uint32_t slot = AllocSlot(s, stored->key);
  RowMeta* meta = MetaOf(s, slot);
  std::memcpy(meta, row, row_bytes_);
  meta->flags = flags;
  ++s.in_both;
  return slot;
}

absl::Status SparseTable::Settle() {
  MemoryBudget* budget = options_.budget;
  for (int tries = 0; budget != nullptr && budget->over() > 0 && tries < kNumStripes; ++tries) {
    Stripe* biggest = nullptr;
    size_t most = 0;
    for (auto& sp : stripes_) {
      absl::MutexLock lock(&sp->mu);
      if (sp->index.size() > most) {
        most = sp->index.size();
        biggest = sp.get();
      }
    }
    if (biggest == nullptr) return absl::OkStatus();  // over because of other tables
    absl::MutexLock lock(&biggest->mu);
    RETURN_IF_ERROR(SpillIfOver(*biggest, /*any_stripe=*/true));
  }
  return absl::OkStatus();
}

void SparseTable::CompactIfDue(StripeRange stripes) {
  for (int si = stripes.first; si < stripes.last; ++si) {
    Stripe& s = *stripes_[si];
    absl::MutexLock lock(&s.mu);
    if (s.log == nullptr) continue;
    if (s.log->retired() > 0 && reading_ahead_.load() == 0) s.log->CloseRetired();
    if (!s.log->CompactionDue()) continue;
    // Records moved by a compaction are appended after the watermark, so
    // they carry their store flags as of now: a row the last flush wrote
    // is not written again by the next.
    absl::Status status =
        s.log->CompactStep(options_.compact_step_bytes, [&](std::byte* row, uint32_t addr) {
          auto* meta = reinterpret_cast<RowMeta*>(row);
          meta->flags = StoreFlagsOf(s, *meta, addr);
        });
    if (options_.budget != nullptr) options_.budget->Add(LogChargeChange(s));
    if (!status.ok()) {
      compaction_failures_.fetch_add(1, std::memory_order_relaxed);
      LOG_EVERY_N(WARNING, 100) << "table \"" << name() << "\": compacting the spill log of stripe "
                                << s.id << " (the log is whole; tried again on a later request): "
                                << status;
    }
  }
}

absl::Status SparseTable::SpillIfOver(Stripe& s, bool any_stripe) {
  MemoryBudget* budget = options_.budget;
  if (budget == nullptr || budget->over() <= 0) return absl::OkStatus();
  // Only a stripe holding at least its share of the table's rows spills. A
  // request visits the stripes one after another, so otherwise the ones
  // visited after the budget ran over would give up rows for the ones before, and the
  // memory of the slots they once used would stay allocated.
  if (!any_stripe && static_cast<int64_t>(s.index.size()) * kNumStripes <
                         rows_in_memory_.load(std::memory_order_relaxed)) {
    return absl::OkStatus();
  }
  // The overshoot plus a little (1/1024 of the limit), so spills come in
  // batches but no stripe swings far from its share.
  int64_t want_rows = (budget->over() + budget->limit() / (64 * kNumStripes)) / charge_bytes_ + 1;
  want_rows = std::min<int64_t>(want_rows, s.index.size());
  if (want_rows <= 0) return absl::OkStatus();
  auto annotate = [&](const absl::Status& status) {
    return absl::Status(status.code(), absl::StrCat("table \"", name(),
                                                    "\": spilling cold rows: ", status.message()));
  };
  if (s.log == nullptr) {
    RowLog::Options o;
    o.dir = options_.spill_dir;
    o.name = absl::StrFormat("table-%d-stripe-%02d", options_.table_id, s.id);
    o.row_bytes = row_bytes_;
    o.segment_bytes = options_.spill_segment_bytes;
    // Each stripe's buffer is charged to the budget: at most 1/256 of the
    // limit for a table's stripes together (down to a page each).
    o.buffer_bytes = std::clamp<size_t>(budget->limit() / (256 * kNumStripes), 4096,
                                        std::max<size_t>(4096, options_.spill_buffer_bytes));
    o.min_free_disk_bytes = options_.min_free_disk_bytes;
    o.max_stale_fraction = options_.max_stale_fraction;
    auto log = RowLog::Create(o);
    if (!log.ok()) return annotate(log.status());
    s.log = std::move(*log);
    has_log_rows_.store(true, std::memory_order_relaxed);
  }
  const uint32_t num_slots = s.num_slots;
  std::vector<uint32_t>& victims = s.victims;
  victims.clear();
  // CLOCK: a referenced row gets a second chance; at most two sweeps.
  for (uint64_t visited = 0;
       static_cast<int64_t>(victims.size()) < want_rows && visited < 2ull * num_slots + 1;
       ++visited) {
    uint32_t slot = s.clock_hand;
    s.clock_hand = (s.clock_hand + 1) % num_slots;
    RowMeta* meta = MetaOf(s, slot);
    if (!(meta->flags & kUsed)) continue;
    if (meta->flags & kReferenced) {
      meta->flags &= ~kReferenced;
      continue;
    }
    victims.push_back(slot);
    meta->flags &= ~kUsed;  // not picked twice in this sweep
  }
  // Every victim leaves memory: one the log holds already (read back and
  // not changed since) just goes; the others are appended (kDirty /
  // kInStore go with them). If the log cannot take one (disk full), it and
  // the rest stay in memory.
  absl::Status status;
  size_t moved = 0;
  for (; moved < victims.size(); ++moved) {
    RowMeta* meta = MetaOf(s, victims[moved]);
    if (!(meta->flags & kLogCurrent)) {
      status = s.log->Append(reinterpret_cast<const std::byte*>(meta));
      if (!status.ok()) break;
    }
    FreeSlot(s, victims[moved]);
  }
  for (size_t i = moved; i < victims.size(); ++i) MetaOf(s, victims[i])->flags |= kUsed;
  if (budget != nullptr) budget->Add(LogChargeChange(s));
  ShrinkIndex(s);
  ShrinkSlab(s);
  spilled_.fetch_add(moved, std::memory_order_relaxed);
  return status.ok() ? status : annotate(status);
}

void SparseTable::KeyGroups::Assign(std::span<const uint64_t> keys) {
  Prepare(keys);
  for (size_t block = 0; block < num_blocks(); ++block) GroupBlock(block);
}

void SparseTable::KeyGroups::Prepare(std::span<const uint64_t> keys) {
  keys_ = keys;
  order_.resize(keys.size());
  begin_.resize(num_blocks() * (kNumStripes + 1));
}

void SparseTable::KeyGroups::GroupBlock(size_t block) {
  // A counting sort. Each block is grouped whole, whichever stripes a
  // caller serves: testing each key for "in my stripes" is a branch
  // mispredicted half the time, and cost more than grouping it all.
  // Counted on the stack, not in begin_, whose blocks share cache lines
  // with their neighbours, which another thread may be grouping.
  constexpr int S = kNumStripes;
  DCHECK_LT(block, num_blocks());
  const size_t at = block * kBlockKeys, n = std::min(kBlockKeys, keys_.size() - at);
  const uint64_t* keys = keys_.data() + at;
  uint8_t stripe[kBlockKeys];
  uint32_t count[S + 1] = {};
  for (size_t i = 0; i < n; ++i) {
    const int s = StripeOf(keys[i]);
    stripe[i] = static_cast<uint8_t>(s);
    ++count[s + 1];
  }
  for (int i = 0; i < S; ++i) count[i + 1] += count[i];
  std::copy(count, count + S + 1, &begin_[block * (S + 1)]);
  uint32_t* order = &order_[at];
  for (uint32_t i = 0; i < n; ++i) order[count[stripe[i]]++] = i;
}

// A whole request served by one thread.
namespace {
thread_local SparseTable::KeyGroups tls_groups;
}  // namespace

absl::Status SparseTable::Pull(std::span<const uint64_t> keys, float* out, uint64_t catch_up_to,
                               float learning_rate_scale) {
  tls_groups.Assign(keys);
  return Pull(tls_groups, out, kAllStripes, catch_up_to, learning_rate_scale);
}

absl::Status SparseTable::Push(std::span<const uint64_t> keys, const float* grads,
                               const uint32_t* counts, uint64_t global_step,
                               float learning_rate_scale, float batch_fraction) {
  tls_groups.Assign(keys);
  return Push(tls_groups, grads, counts, global_step, learning_rate_scale, batch_fraction);
}

void SparseTable::AddTally(const Tally& tally) {
  if (tally.memory_hits != 0) memory_hits_.fetch_add(tally.memory_hits, std::memory_order_relaxed);
  if (tally.disk_hits != 0) disk_hits_.fetch_add(tally.disk_hits, std::memory_order_relaxed);
  if (tally.misses != 0) misses_.fetch_add(tally.misses, std::memory_order_relaxed);
}

void SparseTable::ReadAhead(const KeyGroups& groups, StripeRange stripes) {
  Ahead& ahead = tls_ahead;
  ahead.table = nullptr;
  if (!has_log_rows_.load(std::memory_order_relaxed)) return;
  // Counted before any stripe is locked: a log that removes a file after
  // this keeps its descriptor open until no read ahead is in flight
  // (CompactIfDue).
  reading_ahead_.fetch_add(1);
  absl::Cleanup done = [this] { reading_ahead_.fetch_sub(1); };
  ahead.at.clear();
  ahead.addrs.clear();
  ahead.locations.clear();
  const size_t num_blocks = groups.num_blocks();
  for (int si = stripes.first; si < stripes.last; ++si) {
    Stripe& s = *stripes_[si];
    absl::MutexLock lock(&s.mu);
    if (s.log == nullptr || s.log->size() == 0) continue;
    for (size_t b = 0; b < num_blocks; ++b) {
      const uint32_t* begin = &groups.begin_[b * (kNumStripes + 1)];
      const uint32_t* order = &groups.order_[b * kBlockKeys];
      const uint64_t* keys = groups.keys_.data() + b * kBlockKeys;
      const uint32_t first = begin[si], last = begin[si + 1];
      for (uint32_t j = first; j < last; ++j) {
        PrefetchWindowAt(j, first, last, [&](uint32_t k) { s.index.Prefetch(keys[order[k]]); });
        const uint64_t key = keys[order[j]];
        if (s.index.Find(key) != kNoSlot) continue;
        const uint32_t addr = s.log->Find(key);
        RowLog::Location location;
        if (addr == RowLog::kNone || !s.log->Locate(addr, &location)) continue;
        if (!ahead.at.emplace(key, static_cast<uint32_t>(ahead.addrs.size())).second) continue;
        ahead.addrs.push_back(addr);
        ahead.locations.push_back(location);
      }
    }
  }
  if (ahead.addrs.empty()) return;
  ahead.rows.resize(ahead.addrs.size() * row_bytes_);
  RowLog::ReadUnlocked(ahead.locations, row_bytes_, ahead.rows.data(), &ahead.ok);
  read_ahead_.fetch_add(ahead.addrs.size(), std::memory_order_relaxed);
  ahead.table = this;
}

absl::Status SparseTable::Pull(const KeyGroups& groups, float* out, StripeRange stripes,
                               uint64_t catch_up_to, float learning_rate_scale) {
  const bool catch_up = config_.optimizer().l2_on_missed_steps() && config_.optimizer().l2() > 0;
  if (!catch_up) catch_up_to = 0;
  const float lr = optimizer_->learning_rate() * learning_rate_scale;
  uint64_t pulled = 0;
  Tally tally;
  absl::Cleanup count = [&] {
    AddTally(tally);
    tls_ahead.table = nullptr;
  };
  ReadAhead(groups, stripes);
  for (size_t block = 0; block * kBlockKeys < groups.keys().size(); ++block) {
    ASSIGN_OR_RETURN(uint64_t done, PullBlock(groups, block, out + block * kBlockKeys * dim_,
                                              stripes, catch_up_to, lr, tally));
    pulled += done;
  }
  CompactIfDue(stripes);
  RETURN_IF_ERROR(Settle());
  pulled_keys_.fetch_add(pulled, std::memory_order_relaxed);
  return absl::OkStatus();
}

absl::Status SparseTable::FindSlots(Stripe& s, std::span<const uint64_t> keys, uint32_t b,
                                    uint32_t e, Tally& tally) {
  Scratch& scratch = tls_scratch;
  scratch.miss_keys.clear();
  scratch.miss_pos.clear();
  scratch.further.clear();
  uint32_t misses = 0;
  for (uint32_t j = b; j < e; ++j) {
    PrefetchWindowAt(j, b, e, [&](uint32_t k) { s.index.Prefetch(keys[scratch.order[k]]); });
    const uint32_t found = s.index.FindInHome(keys[scratch.order[j]]);
    scratch.slots[j] = found;
    misses += found == kNoSlot;
    if (found == KeyIndex::kFurther) scratch.further.push_back(j);
  }
  // The few whose home line passed keys on, once the others are done.
  for (uint32_t j : scratch.further) {
    const uint32_t found = s.index.FindPastHome(keys[scratch.order[j]]);
    scratch.slots[j] = found;
    misses += found == kNoSlot;
  }
  tally.memory_hits += e - b - misses;
  if (misses == 0) return absl::OkStatus();
  for (uint32_t j = b; j < e; ++j) {
    if (scratch.slots[j] == kNoSlot) {
      scratch.miss_keys.push_back(keys[scratch.order[j]]);
      scratch.miss_pos.push_back(j);
    }
  }
  scratch.store_keys.clear();
  scratch.store_pos.clear();
  if (s.log != nullptr && s.log->size() > 0) {
    scratch.log_pos.clear();
    scratch.log_addrs.clear();
    const auto n = static_cast<uint32_t>(scratch.miss_keys.size());
    const Ahead& ahead = tls_ahead;
    const bool have_ahead = ahead.table == this;
    for (uint32_t m = 0; m < n; ++m) {
      PrefetchWindowAt(m, 0, n, [&](uint32_t k) { s.log->Prefetch(scratch.miss_keys[k]); });
      const uint64_t key = scratch.miss_keys[m];
      const uint32_t addr = s.log->Find(key);
      if (addr == RowLog::kNone) {
        scratch.store_keys.push_back(key);
        scratch.store_pos.push_back(scratch.miss_pos[m]);
        continue;
      }
      if (have_ahead) {
        // Read ahead, and still the key's record: records never change in
        // place, so the bytes read then are its bytes now.
        if (auto it = ahead.at.find(key); it != ahead.at.end() && ahead.addrs[it->second] == addr &&
                                          ahead.ok[it->second] &&
                                          s.log->StillAt(addr, ahead.locations[it->second].seq)) {
          const std::byte* row = ahead.rows.data() + size_t{it->second} * row_bytes_;
          uint32_t slot =
              s.index.Find(key);  // a key repeated in the block, read back by an earlier copy
          if (slot == kNoSlot) slot = BringBack(s, row, addr);
          scratch.slots[scratch.miss_pos[m]] = slot;
          ++tally.disk_hits;
          continue;
        }
      }
      scratch.log_pos.push_back(scratch.miss_pos[m]);
      scratch.log_addrs.push_back(addr);
    }
    if (!scratch.log_addrs.empty()) {
      // One batch of reads for the group, all in flight at once.
      scratch.log_rows.resize(scratch.log_addrs.size() * row_bytes_);
      if (absl::Status status = s.log->Read(scratch.log_addrs, scratch.log_rows.data());
          !status.ok()) {
        return absl::Status(
            status.code(),
            absl::StrCat("table \"", name(), "\": reading spilled rows: ", status.message()));
      }
      for (size_t i = 0; i < scratch.log_addrs.size(); ++i) {
        const std::byte* row = scratch.log_rows.data() + i * row_bytes_;
        const uint64_t key = keys[scratch.order[scratch.log_pos[i]]];
        if (reinterpret_cast<const RowMeta*>(row)->key != key) {
          return absl::DataLossError(
              absl::StrFormat("table \"%s\": the spill log's record for key %d holds key %d",
                              name(), key, reinterpret_cast<const RowMeta*>(row)->key));
        }
        // A key repeated in the block was read back by its first copy.
        uint32_t slot = i > 0 ? s.index.Find(key) : kNoSlot;
        if (slot == kNoSlot) slot = BringBack(s, row, scratch.log_addrs[i]);
        scratch.slots[scratch.log_pos[i]] = slot;
      }
      tally.disk_hits += scratch.log_addrs.size();
    }
  } else {
    scratch.store_keys.swap(scratch.miss_keys);
    scratch.store_pos.swap(scratch.miss_pos);
  }
  if (!scratch.store_keys.empty()) {
    RETURN_IF_ERROR(Promote(s, scratch.store_keys, &scratch.miss_slots, tally));
    for (size_t m = 0; m < scratch.store_keys.size(); ++m) {
      if (scratch.miss_slots[m] != kNoSlot)
        scratch.slots[scratch.store_pos[m]] = scratch.miss_slots[m];
    }
  }
  return absl::OkStatus();
}

// (The lock is taken here and released by serve_locked's cleanup, a pattern
// the thread-safety analysis cannot follow; each serve asserts it.)
template <typename Serve>
absl::Status SparseTable::ForEachStripeGroup(const uint32_t* begin, StripeRange stripes,
                                             Serve serve) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  int later[kNumStripes];
  int num_later = 0;
  auto serve_locked = [&](int si) {  // stripe si is locked; unlocks it
    Stripe& s = *stripes_[si];
    absl::Cleanup unlock = [&s]() ABSL_NO_THREAD_SAFETY_ANALYSIS { s.mu.Unlock(); };
    return serve(s, begin[si], begin[si + 1]);
  };
  for (int si = stripes.first; si < stripes.last; ++si) {
    if (begin[si] == begin[si + 1]) continue;
    if (stripes_[si]->mu.TryLock()) {
      RETURN_IF_ERROR(serve_locked(si));
    } else {
      later[num_later++] = si;
    }
  }
  while (num_later > 0) {
    // Each pass serves the stripes that became free; when none did, it waits
    // for the first.
    int kept = 0;
    for (int i = 0; i < num_later; ++i) {
      if (stripes_[later[i]]->mu.TryLock()) {
        RETURN_IF_ERROR(serve_locked(later[i]));
      } else {
        later[kept++] = later[i];
      }
    }
    if (kept == num_later) {
      stripes_[later[0]]->mu.Lock();
      RETURN_IF_ERROR(serve_locked(later[0]));
      std::copy(later + 1, later + kept, later);
      --kept;
    }
    num_later = kept;
  }
  return absl::OkStatus();
}

std::span<const uint64_t> SparseTable::UseBlock(const KeyGroups& groups, size_t block) {
  Scratch& scratch = tls_scratch;
  const size_t at = block * kBlockKeys, n = std::min(kBlockKeys, groups.keys_.size() - at);
  scratch.order = &groups.order_[at];
  scratch.begin = &groups.begin_[block * (kNumStripes + 1)];
  scratch.slots.resize(n);
  return groups.keys_.subspan(at, n);
}

void SparseTable::CatchUp(RowMeta* meta, float* w, uint32_t step, float lr) const {
  if (meta->updates == 0 || step <= meta->last_step + 1) return;
  const uint32_t missed = std::min<uint32_t>(step - meta->last_step - 1, kMaxMissedSteps);
  for (uint32_t k = 0; k < missed; ++k) {
    optimizer_->Update(w, w + dim_, zeros_.data(), ++meta->updates, lr);
  }
}

absl::StatusOr<uint64_t> SparseTable::PullBlock(const KeyGroups& groups, size_t block, float* out,
                                                StripeRange stripes, uint64_t catch_up_to, float lr,
                                                Tally& tally) {
  Scratch& scratch = tls_scratch;  // one TLS lookup, not one per access
  const std::span<const uint64_t> keys = UseBlock(groups, block);
  const uint32_t now = options_.now_seconds();
  const bool stream =
      sizeof(float) * dim_ % kLineBytes == 0 && reinterpret_cast<uintptr_t>(out) % kLineBytes == 0;
  uint64_t handled = 0;
  RETURN_IF_ERROR(ForEachStripeGroup(
      scratch.begin, stripes, [&](Stripe& s, uint32_t b, uint32_t e) -> absl::Status {
        s.mu.AssertHeld();
        handled += e - b;
        RETURN_IF_ERROR(FindSlots(s, keys, b, e, tally));
        // Pass 2: copy weights (a pull reads the meta and the weights).
        const size_t read_bytes = sizeof(RowMeta) + sizeof(float) * dim_;
        for (uint32_t j = b; j < e; ++j) {
          PrefetchWindowAt(j, b, e,
                           [&](uint32_t k) { PrefetchRow(s, scratch.slots[k], read_bytes); });
          const uint32_t pos = scratch.order[j];
          float* dst = out + static_cast<size_t>(pos) * dim_;
          uint32_t slot = scratch.slots[j];
          // An earlier copy of the key in this group found its row expired and
          // dropped it.
          if (slot != kNoSlot && !(MetaOf(s, slot)->flags & kUsed)) slot = kNoSlot;
          if (slot != kNoSlot && Expired(*MetaOf(s, slot), 0, now)) {
            RETURN_IF_ERROR(DropRow(s, slot));
            evicted_ttl_.fetch_add(1, std::memory_order_relaxed);
            slot = kNoSlot;
          }
          if (slot != kNoSlot) {
            RowMeta* meta = MetaOf(s, slot);
            float* w = WeightsOf(s, slot);
            // Up to date as of step catch_up_to - 1: a push there would
            // find no missed steps.
            if (catch_up_to > 0 && meta->updates > 0 &&
                static_cast<uint32_t>(catch_up_to - 1) > meta->last_step) {
              CatchUp(meta, w, static_cast<uint32_t>(catch_up_to), lr);
              meta->last_step = static_cast<uint32_t>(catch_up_to - 1);
              meta->flags = (meta->flags & ~kLogCurrent) | kDirty;
            }
            if (stream) {
              StreamLines(dst, w, dim_);
            } else {
              for (int d = 0; d < dim_; ++d) dst[d] = w[d];
            }
            // Only the CLOCK needs the bit; leave the line clean when it is set.
            if (!(meta->flags & kReferenced)) meta->flags |= kReferenced;
          } else {
            ++tally.misses;
            if (admission_) {
              std::memset(dst, 0, sizeof(float) * dim_);
            } else {
              InitializeRow(config_, keys[pos], dst, dim_);
            }
          }
        }
        return SpillIfOver(s);
      }));
  if (stream) StreamFence();
  return handled;
}

absl::Status SparseTable::Push(const KeyGroups& groups, const float* grads, const uint32_t* counts,
                               uint64_t global_step, float learning_rate_scale,
                               float batch_fraction, StripeRange stripes) {
  const float lr = optimizer_->learning_rate() * learning_rate_scale;
  uint64_t pushed = 0;
  Tally tally;
  absl::Cleanup count = [&] {
    AddTally(tally);
    tls_ahead.table = nullptr;
  };
  ReadAhead(groups, stripes);
  for (size_t block = 0; block * kBlockKeys < groups.keys().size(); ++block) {
    const size_t at = block * kBlockKeys;
    ASSIGN_OR_RETURN(uint64_t done, PushBlock(groups, block, grads + at * dim_,
                                              counts != nullptr ? counts + at : nullptr,
                                              global_step, lr, batch_fraction, stripes, tally));
    pushed += done;
  }
  CompactIfDue(stripes);
  RETURN_IF_ERROR(Settle());
  pushed_keys_.fetch_add(pushed, std::memory_order_relaxed);
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> SparseTable::PushBlock(const KeyGroups& groups, size_t block,
                                                const float* grads, const uint32_t* counts,
                                                uint64_t global_step, float lr, float fraction,
                                                StripeRange stripes, Tally& tally) {
  Scratch& scratch = tls_scratch;
  const std::span<const uint64_t> keys = UseBlock(groups, block);
  const uint32_t now = options_.now_seconds();
  const uint32_t step32 = static_cast<uint32_t>(global_step);
  const bool catch_up = config_.optimizer().l2_on_missed_steps() && config_.optimizer().l2() > 0;
  uint64_t handled = 0;
  RETURN_IF_ERROR(ForEachStripeGroup(
      scratch.begin, stripes, [&](Stripe& s, uint32_t b, uint32_t e) -> absl::Status {
        s.mu.AssertHeld();
        handled += e - b;
        RETURN_IF_ERROR(FindSlots(s, keys, b, e, tally));
        // Once a slot was freed or allocated in this group, slots found in pass 1
        // for repeated keys may be stale: look them up again.
        bool slots_changed = false;
        // Rows and their gradients are prefetched: grouped by stripe, the
        // gradients are read out of the request's order, each one a cache miss.
        const size_t grad_bytes = sizeof(float) * dim_;
        for (uint32_t j = b; j < e; ++j) {
          PrefetchWindowAt(j, b, e, [&](uint32_t k) {
            PrefetchRow(s, scratch.slots[k], row_bytes_);
            PrefetchBytes(grads + static_cast<size_t>(scratch.order[k]) * dim_, grad_bytes);
          });
          const uint32_t pos = scratch.order[j];
          const uint64_t key = keys[pos];
          const uint32_t c = counts != nullptr ? counts[pos] : 1;
          uint32_t slot = scratch.slots[j];
          if (slots_changed) slot = s.index.Find(key);
          RowMeta* meta = nullptr;
          float* w = nullptr;
          if (slot != kNoSlot && Expired(*MetaOf(s, slot), global_step, now)) {
            RETURN_IF_ERROR(DropRow(s, slot));
            evicted_ttl_.fetch_add(1, std::memory_order_relaxed);
            slot = kNoSlot;
            slots_changed = true;
          }
          if (meta == nullptr && slot == kNoSlot) {
            uint32_t seen = c;
            if (admission_) {
              auto it = s.pending.find(key);
              seen += it != s.pending.end() ? it->second : 0;
              if (!AdmittedAt(key, seen)) {
                s.pending[key] = seen;
                continue;
              }
              if (it != s.pending.end()) s.pending.erase(it);
            }
            slot = AllocSlot(s, key);
            slots_changed = true;
            ++tally.misses;
            meta = MetaOf(s, slot);
            *meta = RowMeta{.key = key, .flags = kUsed | kReferenced};
            meta->count = seen - c;
            w = WeightsOf(s, slot);
            InitializeRow(config_, key, w, dim_);
            optimizer_->InitState(w + dim_);
          } else if (meta == nullptr) {
            meta = MetaOf(s, slot);
            w = WeightsOf(s, slot);
          }
          if (catch_up) CatchUp(meta, w, step32, lr);
          meta->count += c;
          meta->updates += 1;
          meta->last_step = step32;
          meta->last_sec = now;
          optimizer_->Update(w, w + dim_, grads + static_cast<size_t>(pos) * dim_, meta->updates,
                             lr, fraction);
          meta->flags = (meta->flags & ~kLogCurrent) | kReferenced | kDirty;
        }
        return SpillIfOver(s);
      }));
  return handled;
}

absl::StatusOr<uint64_t> SparseTable::EvictExpired(uint64_t global_step) {
  if (config_.ttl_steps() == 0 && config_.ttl_seconds() == 0) return 0;
  const uint32_t now = options_.now_seconds();
  uint64_t dropped = 0;
  for (auto& sp : stripes_) {
    Stripe& s = *sp;
    absl::MutexLock lock(&s.mu);
    for (uint32_t slot = 0; slot < s.num_slots; ++slot) {
      const RowMeta* meta = MetaOf(s, slot);
      if ((meta->flags & kUsed) && Expired(*meta, global_step, now)) {
        RETURN_IF_ERROR(DropRow(s, slot));
        ++dropped;
      }
    }
    ShrinkIndex(s);
    ShrinkSlab(s);
    if (s.log == nullptr) continue;
    // Rows in memory were judged above; those only in the log are read
    // through once, in large sequential chunks.
    std::vector<std::pair<uint64_t, uint32_t>> expired;  // key, store flags
    RETURN_IF_ERROR(s.log->ForEachLive([&](const std::byte* row, uint32_t addr) {
      const auto* meta = reinterpret_cast<const RowMeta*>(row);
      if (Expired(*meta, global_step, now) && s.index.Find(meta->key) == kNoSlot) {
        expired.emplace_back(meta->key, StoreFlagsOf(s, *meta, addr));
      }
    }));
    for (const auto& [key, flags] : expired) {
      RowMeta meta{.key = key, .flags = flags};
      RETURN_IF_ERROR(DeleteStoreCopy(meta));
      s.log->Erase(key);
      ++dropped;
    }
    if (options_.budget != nullptr) options_.budget->Add(LogChargeChange(s));
  }
  evicted_ttl_.fetch_add(dropped, std::memory_order_relaxed);
  return dropped;
}

TableStats SparseTable::Stats() const {
  TableStats st;
  st.set_name(name());
  uint64_t rows = 0, pending = 0, bytes = 0, spilled_rows = 0, file_bytes = 0, disk_live = 0,
           index_bytes = 0;
  uint64_t reads = 0, read_bytes = 0, writes = 0, written_bytes = 0, compacted_segments = 0,
           compacted_bytes = 0, compacted_rows = 0, compacting_done = 0, compacting_total = 0;
  for (auto& sp : stripes_) {
    Stripe& s = *sp;
    absl::MutexLock lock(&s.mu);
    rows += s.index.size();
    if (s.log != nullptr) {
      spilled_rows += s.log->size() - s.in_both;
      file_bytes += s.log->file_bytes();
      disk_live += s.log->live_bytes();
      index_bytes += s.log->index_bytes();
      const RowLog::Counters& c = s.log->counters();
      reads += c.reads;
      read_bytes += c.read_bytes;
      writes += c.writes;
      written_bytes += c.written_bytes;
      compacted_segments += c.compacted_segments;
      compacted_bytes += c.compacted_bytes;
      compacted_rows += c.compacted_live_rows;
      const auto [done, total] = s.log->compaction_progress();
      compacting_done += done;
      compacting_total += total;
      bytes += s.log->index_bytes() + s.log->buffer_bytes();
    }
    // (Reads ahead are added below, once.)
    pending += s.pending.size();
    // Rows touched so far (chunk pages are committed as they are used).
    bytes += static_cast<uint64_t>(s.num_slots) * row_bytes_;
    bytes += s.index.bytes();
    bytes += s.pending.capacity() * (sizeof(std::pair<uint64_t, uint32_t>) + 1);
    bytes += s.free_slots.capacity() * 4;
  }
  st.set_rows_in_memory(rows);
  st.set_rows_on_disk(spilled_rows + store_only_rows_.load());
  st.set_bytes_on_disk(file_bytes);
  st.set_rows_pending_admission(pending);
  st.set_bytes_in_memory(bytes);
  st.set_memory_hits(memory_hits_.load());
  st.set_disk_hits(disk_hits_.load());
  st.set_misses(misses_.load());
  st.set_rows_spilled(spilled_.load());
  st.set_rows_evicted_ttl(evicted_ttl_.load());
  st.set_pulled_keys(pulled_keys_.load());
  st.set_pushed_keys(pushed_keys_.load());
  st.set_disk_live_bytes(disk_live);
  st.set_disk_stale_bytes(file_bytes - disk_live);
  st.set_disk_index_bytes(index_bytes);
  const uint64_t ahead = read_ahead_.load();
  st.set_disk_reads(reads + ahead);
  st.set_disk_read_bytes(read_bytes + ahead * row_bytes_);
  st.set_disk_writes(writes);
  st.set_disk_written_bytes(written_bytes);
  st.set_compacted_segments(compacted_segments);
  st.set_compacted_bytes(compacted_bytes);
  st.set_compacted_live_rows(compacted_rows);
  st.set_compacting_done_bytes(compacting_done);
  st.set_compacting_total_bytes(compacting_total);
  st.set_compaction_failures(compaction_failures_.load());
  return st;
}

absl::StatusOr<SparseTable::RowSnapshot> SparseTable::Peek(uint64_t key) {
  Stripe& s = *stripes_[StripeOf(key)];
  absl::MutexLock lock(&s.mu);
  RowSnapshot snap;
  std::string stored;
  const char* row = nullptr;
  if (uint32_t slot = s.index.Find(key); slot != kNoSlot) {
    row = reinterpret_cast<const char*>(MetaOf(s, slot));
  } else if (const uint32_t addr = s.log != nullptr ? s.log->Find(key) : RowLog::kNone;
             addr != RowLog::kNone) {
    stored.resize(row_bytes_);
    RETURN_IF_ERROR(s.log->Read({&addr, 1}, reinterpret_cast<std::byte*>(stored.data())));
    row = stored.data();
    snap.on_disk = true;
  } else if (options_.store != nullptr) {
    std::string k = DiskKey(key);
    std::vector<std::string> values;
    std::vector<bool> found;
    RETURN_IF_ERROR(options_.store->MultiGet({k}, &values, &found));
    if (found[0] && values[0].size() == row_bytes_) {
      stored = std::move(values[0]);
      row = stored.data();
      snap.on_disk = true;
    }
  }
  if (row == nullptr) return absl::NotFoundError(absl::StrCat("key ", key, " has no row"));
  std::memcpy(&snap.meta, row, sizeof(RowMeta));
  const float* f = reinterpret_cast<const float*>(row + sizeof(RowMeta));
  snap.weights.assign(f, f + dim_);
  snap.state.assign(f + dim_, f + dim_ + state_dim_);
  return snap;
}

}  // namespace ctrps
