#include "ps/sparse_table.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#if defined(__AVX__)
#include <immintrin.h>
#endif

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/hash.h"
#include "common/status.h"
#include "glog/logging.h"
#include "ps/prefetch.h"
#include "ps/key_index.h"

namespace ctrps {
namespace {

constexpr uint32_t kNoSlot = KeyIndex::kNone;
// In scratch.slots: the row is in the spill file, at scratch.file_rows[j].
// Never a real slot (slots stay below 2^32 - 256).
constexpr uint32_t kInFile = kNoSlot - 1;
static_assert(kInFile != KeyIndex::kFurther);
// Row flags. kUsed, kReferenced: a memory slot in use, and its CLOCK bit.
// kDirty: changed since it was last written to the store. kInStore: the
// store also holds a copy (current unless kDirty). The last two travel with
// the row into the spill file and back.
constexpr uint32_t kUsed = 1, kReferenced = 2, kDirty = 4, kInStore = 8;
constexpr uint32_t kStoreFlags = kDirty | kInStore;
// A stripe's keys in a block are served in windows of up to this many.
// Lookups: each window's index entries are prefetched in a loop of
// prefetches alone, then looked up. Then the rows (and a push's gradients),
// again a window at a time: prefetched in a loop of their own, then read or
// updated. Random rows of a big table each cost a page walk, and a core
// keeps only so many in flight; prefetches a fixed distance ahead inside the
// lookup or update loop kept far fewer in flight than these loops do
// (`vm_probe --parts walks`; the table's pulls 1.3-1.4x, pushes 1.5x,
// docs/BENCHMARKS.md, session 9). For dim 16 with Adagrad a window's lines
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
// A push brings a spilled row back into memory once in this many (see
// WantBack); the other pushes update it in the spill file.
constexpr uint64_t kBringBackOneIn = 32;
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
inline void StreamLines(float* dst, const float* src, int dim) { std::memcpy(dst, src, sizeof(float) * dim); }
inline void StreamFence() {}
#endif

// Scratch reused by every request on a thread: no allocation per request
// once warm.
struct Scratch {
  // The block being served (in its KeyGroups): key positions grouped by
  // stripe, stripe s at [begin[s], begin[s + 1]).
  const uint32_t* order = nullptr;
  const uint32_t* begin = nullptr;
  std::vector<uint32_t> slots;  // slot per grouped position
  std::vector<uint32_t> further;  // grouped positions whose lookup goes past the home line
  std::vector<uint64_t> miss_keys;
  std::vector<uint32_t> miss_pos;
  std::vector<uint32_t> miss_slots;
  std::vector<uint64_t> store_keys;  // misses that were not in the spill file either
  std::vector<uint32_t> store_pos;
  std::vector<std::byte*> file_rows;  // per grouped position whose slot is kInFile: the row
  // Promote's store request and reply, kept so that their strings' buffers
  // are reused: a loaded row read from the store costs no allocation.
  std::vector<std::string> disk_keys;
  std::vector<std::string_view> disk_views;
  std::vector<std::string> disk_values;
  std::vector<bool> disk_found;
};
thread_local Scratch tls_scratch;

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
  std::vector<uint32_t> victims ABSL_GUARDED_BY(mu);  // reused by each spill
  std::unique_ptr<SpillFile> spill ABSL_GUARDED_BY(mu);  // created by the first spill
  int spill_generation ABSL_GUARDED_BY(mu) = -1;          // of the file rewrite_at was set for
  uint32_t spill_rewrite_at ABSL_GUARDED_BY(mu) = 0;      // clock seconds
  uint32_t spill_written_at ABSL_GUARDED_BY(mu) = 0;     // clock seconds the file was last found written (or made)
};

absl::StatusOr<std::unique_ptr<SparseTable>> SparseTable::Create(const TableConfig& config,
                                                                 const Options& options) {
  if (config.dim() <= 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("table \"%s\" has dim %d; it must be > 0", config.name(), config.dim()));
  }
  if (options.budget != nullptr && options.budget->limited() && options.spill_dir.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("table \"", config.name(), "\": a memory limit needs a directory to spill rows to"));
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
    bytes += s->index.size() * charge_bytes_ + s->charged_index_bytes;
  }
  options_.budget->Add(-bytes);
}

void SparseTable::PrefetchRow(const Stripe& s, uint32_t slot, size_t bytes) const {
  if (slot < kInFile) PrefetchBytes(MetaOf(s, slot), bytes);
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

void SparseTable::ShrinkIndex(Stripe& s) {
  if (s.index.ShrinkIfSparse() && options_.budget != nullptr) options_.budget->Add(IndexChargeChange(s));
}

absl::Status SparseTable::DeleteStoreCopy(const RowMeta& meta) {
  if (!(meta.flags & kInStore)) return absl::OkStatus();
  // Without this the store's copy would come back on the next miss.
  std::string k = DiskKey(meta.key);
  return options_.store->Write({{k, {}, true}});
}

absl::Status SparseTable::DropSpilledRow(Stripe& s, uint32_t j, uint32_t e) {
  Scratch& scratch = tls_scratch;
  std::byte* row = scratch.file_rows[j];
  RETURN_IF_ERROR(DeleteStoreCopy(*reinterpret_cast<const RowMeta*>(row)));
  s.spill->EraseFound(row);
  evicted_ttl_.fetch_add(1, std::memory_order_relaxed);
  // Later copies of the key in this group no longer have a row there.
  for (uint32_t k = j + 1; k < e; ++k) {
    if (scratch.slots[k] == kInFile && scratch.file_rows[k] == row) scratch.slots[k] = kNoSlot;
  }
  return absl::OkStatus();
}

absl::Status SparseTable::DropRow(Stripe& s, uint32_t slot) {
  RETURN_IF_ERROR(DeleteStoreCopy(*MetaOf(s, slot)));
  FreeSlot(s, slot);
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> SparseTable::Flush() {
  if (options_.store == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat("table \"", name(), "\" has no store to flush to"));
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
    // In key order: RocksDB's memtable takes sorted inserts several times
    // faster than random ones. The spill file's rows stay put while the
    // stripe is locked, so pointers to them are stable here.
    std::vector<std::pair<uint64_t, RowMeta*>> dirty;
    for (uint32_t slot = 0; slot < s.num_slots; ++slot) {
      RowMeta* meta = MetaOf(s, slot);
      if ((meta->flags & kUsed) && (meta->flags & kDirty)) dirty.emplace_back(meta->key, meta);
    }
    if (s.spill != nullptr) {
      const size_t in_memory = dirty.size();
      s.spill->ForEach([&](std::byte* row) {
        auto* meta = reinterpret_cast<RowMeta*>(row);
        if (meta->flags & kDirty) dirty.emplace_back(meta->key, meta);
        return false;
      });
      // Their flags change below, in place: the file is written.
      if (dirty.size() > in_memory) s.spill->MarkWritten();
    }
    std::sort(dirty.begin(), dirty.end());
    for (const auto& [key, meta] : dirty) {
      buffer.append(DiskKey(meta->key));
      buffer.append(reinterpret_cast<const char*>(meta), row_bytes_);
      chunk.push_back(meta);
      if (chunk.size() == kChunkRows) RETURN_IF_ERROR(write_chunk());
    }
    RETURN_IF_ERROR(write_chunk());
  }
  return written;
}

std::string SparseTable::DiskKey(uint64_t key) const {
  // Big-endian (table id, key) so a table's rows are contiguous in the store.
  std::string k(12, '\0');
  for (int i = 0; i < 4; ++i) k[i] = static_cast<char>(options_.table_id >> (24 - 8 * i));
  for (int i = 0; i < 8; ++i) k[4 + i] = static_cast<char>(key >> (56 - 8 * i));
  return k;
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
      return absl::DataLossError(absl::StrFormat("table \"%s\": stored row of key %d has %d bytes, expected %d",
                                                 name(), keys[i], values[i].size(), row_bytes_));
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

bool SparseTable::WantBack(const RowMeta& meta) const {
  // Room to spare: well below the level a spill frees memory down to, so
  // that rows a spill just moved out do not all come back.
  const MemoryBudget& budget = *options_.budget;
  if (budget.used() + charge_bytes_ <= budget.limit() - budget.limit() / 32) return true;
  // One push in kBringBackOneIn, drawn from (key, update count): a row pushed
  // often comes back soon, one pushed once in a while is updated where it is.
  return Mix64(meta.key ^ (uint64_t{meta.updates} << 32) ^ 0x243f6a8885a308d3ULL) % kBringBackOneIn == 0;
}

uint32_t SparseTable::BringBack(Stripe& s, std::byte* file_row) {
  const auto* stored = reinterpret_cast<const RowMeta*>(file_row);
  const uint32_t slot = AllocSlot(s, stored->key);
  RowMeta* meta = MetaOf(s, slot);
  const uint32_t flags = kUsed | kReferenced | (stored->flags & kStoreFlags);
  std::memcpy(meta, file_row, row_bytes_);
  meta->flags = flags;
  s.spill->EraseFound(file_row);
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
    // A file this spill made or grew is due from now, not from the next
    // request that reaches the stripe.
    RewriteSpillIfDue(*biggest, options_.now_seconds());
  }
  return absl::OkStatus();
}

void SparseTable::RewriteSpillsIfDue(StripeRange stripes) {
  const uint32_t now = options_.now_seconds();
  for (int si = stripes.first; si < stripes.last; ++si) {
    Stripe& s = *stripes_[si];
    absl::MutexLock lock(&s.mu);
    RewriteSpillIfDue(s, now);
  }
}

void SparseTable::RewriteSpillIfDue(Stripe& s, uint32_t now) {
  const uint32_t period = options_.spill_rewrite_seconds;
  if (s.spill == nullptr || period == 0) return;
  if (s.spill->rewriting()) {
    // A step each time a request reaches the stripe; the rest at once if the
    // stripe was left alone for half a period since the rewrite began (the
    // old file's part not yet copied is ageing toward its writeback).
    if (now >= s.spill_rewrite_at - period + period / 2) {
      s.spill->FinishRewrite();
    } else {
      s.spill->RewriteStep(options_.spill_rewrite_step_bytes);
    }
    if (!s.spill->rewriting()) s.spill_generation = s.spill->generation();
    return;
  }
  if (s.spill->generation() != s.spill_generation) {
    // A file the table did not rewrite: the first, or one a growth made.
    // The stripes make theirs within moments of each other, so their first
    // rewrites are spread over the second half of a period rather than
    // falling on one request.
    s.spill_generation = s.spill->generation();
    s.spill_rewrite_at =
        now + static_cast<uint32_t>(std::max<uint64_t>(1, uint64_t{period} * (kNumStripes + s.id) / (2 * kNumStripes)));
    s.spill_written_at = now;
    return;
  }
  if (now < s.spill_rewrite_at) return;
  s.spill_rewrite_at = now + period;
  // A file not written since it was made still has the dirty pages of its
  // making, which the kernel would clean, and the next pushes would fault
  // on, after a spell of pulls alone (an evaluation; ps_bench's pull phase).
  // It is rewritten on for spill_idle_rewrite_seconds after the file was
  // last found written; after a longer spell the kernel writes it back
  // once, and the first push into each page faults. (Rewriting it only once
  // more covered 50 s: 60 s of pulls then cost pushes a fifth of their
  // speed, docs/BENCHMARKS.md, session 9.)
  if (s.spill->written()) {
    s.spill_written_at = now;
  } else if (now - s.spill_written_at >= options_.spill_idle_rewrite_seconds) {
    return;
  }
  if (absl::Status status = s.spill->StartRewrite(); !status.ok()) {
    spill_rewrite_failures_.fetch_add(1, std::memory_order_relaxed);
    LOG_EVERY_N(WARNING, 100) << "table \"" << name() << "\": rewriting spill file " << s.spill->file()
                              << " (kept as it is, tried again in " << period << " s): " << status;
    return;
  }
  // Counted when begun: once the new file is made, the steps cannot fail.
  spill_rewrites_.fetch_add(1, std::memory_order_relaxed);
  if (s.spill->RewriteStep(options_.spill_rewrite_step_bytes)) s.spill_generation = s.spill->generation();
}

absl::Status SparseTable::SpillIfOver(Stripe& s, bool any_stripe) {
  MemoryBudget* budget = options_.budget;
  if (budget == nullptr || budget->over() <= 0) return absl::OkStatus();
  // Only a stripe holding at least its share of the table's rows spills. A
  // request visits the stripes one after another, so otherwise the ones
  // visited after the budget ran over would give up rows for the ones before, and the
  // memory of the slots they once used would stay allocated.
  if (!any_stripe &&
      static_cast<int64_t>(s.index.size()) * kNumStripes < rows_in_memory_.load(std::memory_order_relaxed)) {
    return absl::OkStatus();
  }
  // The overshoot plus a little (1/1024 of the limit), so spills come in
  // batches but no stripe swings far from its share.
  int64_t want_rows = (budget->over() + budget->limit() / (64 * kNumStripes)) / charge_bytes_ + 1;
  want_rows = std::min<int64_t>(want_rows, s.index.size());
  if (want_rows <= 0) return absl::OkStatus();
  auto annotate = [&](const absl::Status& status) {
    return absl::Status(status.code(), absl::StrCat("table \"", name(), "\": spilling cold rows: ", status.message()));
  };
  if (s.spill == nullptr) {
    auto file = SpillFile::Create(
        absl::StrFormat("%s/table-%d-stripe-%02d.rows", options_.spill_dir, options_.table_id, s.id), row_bytes_);
    if (!file.ok()) return annotate(file.status());
    s.spill = std::move(*file);
  }
  const uint32_t num_slots = s.num_slots;
  std::vector<uint32_t>& victims = s.victims;
  victims.clear();
  // CLOCK: a referenced row gets a second chance; at most two sweeps.
  for (uint64_t visited = 0; static_cast<int64_t>(victims.size()) < want_rows && visited < 2ull * num_slots + 1;
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
  // Every victim moves to the file (kDirty / kInStore go with it). If the
  // file cannot take one (disk full), it and the rest stay in memory.
  absl::Status status;
  size_t moved = 0;
  for (; moved < victims.size(); ++moved) {
    status = s.spill->Put(reinterpret_cast<const std::byte*>(MetaOf(s, victims[moved])));
    if (!status.ok()) break;
    FreeSlot(s, victims[moved]);
  }
  for (size_t i = moved; i < victims.size(); ++i) MetaOf(s, victims[i])->flags |= kUsed;
  ShrinkIndex(s);
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

absl::Status SparseTable::Pull(std::span<const uint64_t> keys, float* out) {
  tls_groups.Assign(keys);
  return Pull(tls_groups, out);
}

absl::Status SparseTable::Push(std::span<const uint64_t> keys, const float* grads, const uint32_t* counts,
                               uint64_t global_step, float learning_rate_scale, float batch_fraction) {
  tls_groups.Assign(keys);
  return Push(tls_groups, grads, counts, global_step, learning_rate_scale, batch_fraction);
}

void SparseTable::AddTally(const Tally& tally) {
  if (tally.memory_hits != 0) memory_hits_.fetch_add(tally.memory_hits, std::memory_order_relaxed);
  if (tally.disk_hits != 0) disk_hits_.fetch_add(tally.disk_hits, std::memory_order_relaxed);
  if (tally.misses != 0) misses_.fetch_add(tally.misses, std::memory_order_relaxed);
}

absl::Status SparseTable::Pull(const KeyGroups& groups, float* out, StripeRange stripes) {
  uint64_t pulled = 0;
  Tally tally;
  absl::Cleanup count = [&] { AddTally(tally); };
  for (size_t block = 0; block * kBlockKeys < groups.keys().size(); ++block) {
    ASSIGN_OR_RETURN(uint64_t done, PullBlock(groups, block, out + block * kBlockKeys * dim_, stripes, tally));
    pulled += done;
  }
  RewriteSpillsIfDue(stripes);
  RETURN_IF_ERROR(Settle());
  pulled_keys_.fetch_add(pulled, std::memory_order_relaxed);
  return absl::OkStatus();
}

absl::Status SparseTable::FindSlots(Stripe& s, std::span<const uint64_t> keys, uint32_t b, uint32_t e,
                                    bool bring_back, Tally& tally) {
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
  if (s.spill != nullptr && s.spill->size() > 0) {
    bool brought_back = false;
    const auto n = static_cast<uint32_t>(scratch.miss_keys.size());
    // A pull reads the weights; a push also the optimizer state.
    const size_t prefetch_bytes = sizeof(RowMeta) + sizeof(float) * (bring_back ? dim_ + state_dim_ : dim_);
    for (uint32_t m = 0; m < n; ++m) {
      // In two stages: every bucket's tag line of the window, then each is
      // read to find and prefetch the matching row (in the same page). By
      // the time the second loop reads a tag line, most of the others are
      // on their way.
      PrefetchWindowAt(m, 0, n, [&](uint32_t k) { s.spill->Prefetch(scratch.miss_keys[k]); });
      PrefetchWindowAt(m, 0, n, [&](uint32_t k) { s.spill->PrefetchRow(scratch.miss_keys[k], prefetch_bytes); });
      const uint64_t key = scratch.miss_keys[m];
      const uint32_t j = scratch.miss_pos[m];
      std::byte* row = s.spill->Find(key);
      if (row != nullptr) {
        if (bring_back && WantBack(*reinterpret_cast<const RowMeta*>(row))) {
          scratch.slots[j] = BringBack(s, row);
          brought_back = true;
        } else {
          scratch.slots[j] = kInFile;
          scratch.file_rows[j] = row;
        }
        continue;
      }
      // A key repeated in this block whose row an earlier copy brought back.
      if (brought_back) {
        if (uint32_t slot = s.index.Find(key); slot != kNoSlot) {
          scratch.slots[j] = slot;
          continue;
        }
      }
      scratch.store_keys.push_back(key);
      scratch.store_pos.push_back(j);
    }
    tally.disk_hits += n - scratch.store_keys.size();
  } else {
    scratch.store_keys.swap(scratch.miss_keys);
    scratch.store_pos.swap(scratch.miss_pos);
  }
  if (!scratch.store_keys.empty()) {
    RETURN_IF_ERROR(Promote(s, scratch.store_keys, &scratch.miss_slots, tally));
    for (size_t m = 0; m < scratch.store_keys.size(); ++m) {
      if (scratch.miss_slots[m] != kNoSlot) scratch.slots[scratch.store_pos[m]] = scratch.miss_slots[m];
    }
  }
  return absl::OkStatus();
}

// (The lock is taken here and released by serve_locked's cleanup, a pattern
// the thread-safety analysis cannot follow; each serve asserts it.)
template <typename Serve>
absl::Status SparseTable::ForEachStripeGroup(const uint32_t* begin, StripeRange stripes, Serve serve)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {
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
  scratch.file_rows.resize(n);
  return groups.keys_.subspan(at, n);
}

absl::StatusOr<uint64_t> SparseTable::PullBlock(const KeyGroups& groups, size_t block, float* out,
                                                StripeRange stripes, Tally& tally) {
  Scratch& scratch = tls_scratch;  // one TLS lookup, not one per access
  const std::span<const uint64_t> keys = UseBlock(groups, block);
  const uint32_t now = options_.now_seconds();
  const bool stream =
      sizeof(float) * dim_ % kLineBytes == 0 && reinterpret_cast<uintptr_t>(out) % kLineBytes == 0;
  uint64_t handled = 0;
  RETURN_IF_ERROR(ForEachStripeGroup(scratch.begin, stripes, [&](Stripe& s, uint32_t b, uint32_t e) -> absl::Status {
    s.mu.AssertHeld();
    handled += e - b;
    RETURN_IF_ERROR(FindSlots(s, keys, b, e, /*bring_back=*/false, tally));
    // Pass 2: copy weights (a pull reads the meta and the weights).
    const size_t read_bytes = sizeof(RowMeta) + sizeof(float) * dim_;
    for (uint32_t j = b; j < e; ++j) {
      PrefetchWindowAt(j, b, e, [&](uint32_t k) { PrefetchRow(s, scratch.slots[k], read_bytes); });
      const uint32_t pos = scratch.order[j];
      float* dst = out + static_cast<size_t>(pos) * dim_;
      uint32_t slot = scratch.slots[j];
      if (slot == kInFile) {
        // A spilled row is read where it is.
        const std::byte* row = scratch.file_rows[j];
        if (!Expired(*reinterpret_cast<const RowMeta*>(row), 0, now)) {
          std::memcpy(dst, row + sizeof(RowMeta), sizeof(float) * dim_);
          continue;
        }
        RETURN_IF_ERROR(DropSpilledRow(s, j, e));  // reads its initial value below
        slot = kNoSlot;
      }
      if (slot != kNoSlot && Expired(*MetaOf(s, slot), 0, now)) {
        RETURN_IF_ERROR(DropRow(s, slot));
        evicted_ttl_.fetch_add(1, std::memory_order_relaxed);
        slot = kNoSlot;
      }
      if (slot != kNoSlot) {
        RowMeta* meta = MetaOf(s, slot);
        const float* w = WeightsOf(s, slot);
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
                               uint64_t global_step, float learning_rate_scale, float batch_fraction,
                               StripeRange stripes) {
  const float lr = optimizer_->learning_rate() * learning_rate_scale;
  uint64_t pushed = 0;
  Tally tally;
  absl::Cleanup count = [&] { AddTally(tally); };
  for (size_t block = 0; block * kBlockKeys < groups.keys().size(); ++block) {
    const size_t at = block * kBlockKeys;
    ASSIGN_OR_RETURN(uint64_t done, PushBlock(groups, block, grads + at * dim_,
                                              counts != nullptr ? counts + at : nullptr, global_step, lr,
                                              batch_fraction, stripes, tally));
    pushed += done;
  }
  RewriteSpillsIfDue(stripes);
  RETURN_IF_ERROR(Settle());
  pushed_keys_.fetch_add(pushed, std::memory_order_relaxed);
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> SparseTable::PushBlock(const KeyGroups& groups, size_t block, const float* grads,
                                                const uint32_t* counts, uint64_t global_step, float lr,
                                                float fraction, StripeRange stripes, Tally& tally) {
  Scratch& scratch = tls_scratch;
  const std::span<const uint64_t> keys = UseBlock(groups, block);
  const uint32_t now = options_.now_seconds();
  const uint32_t step32 = static_cast<uint32_t>(global_step);
  const bool catch_up = config_.optimizer().l2_on_missed_steps() && config_.optimizer().l2() > 0;
  uint64_t handled = 0;
  RETURN_IF_ERROR(ForEachStripeGroup(scratch.begin, stripes, [&](Stripe& s, uint32_t b, uint32_t e) -> absl::Status {
    s.mu.AssertHeld();
    handled += e - b;
    RETURN_IF_ERROR(FindSlots(s, keys, b, e, /*bring_back=*/true, tally));
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
      // (A spilled row stays where it is during this pass.)
      if (slots_changed && slot != kInFile) slot = s.index.Find(key);
      RowMeta* meta = nullptr;
      float* w = nullptr;
      if (slot == kInFile) {
        // Updated where it is, in the spill file.
        std::byte* row = scratch.file_rows[j];
        if (!Expired(*reinterpret_cast<const RowMeta*>(row), global_step, now)) {
          meta = reinterpret_cast<RowMeta*>(row);
          w = reinterpret_cast<float*>(row + sizeof(RowMeta));
          s.spill->MarkWritten();
        } else {
          RETURN_IF_ERROR(DropSpilledRow(s, j, e));  // a new row below
          slots_changed = true;
        }
        slot = kNoSlot;
      } else if (slot != kNoSlot && Expired(*MetaOf(s, slot), global_step, now)) {
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
      if (catch_up && meta->updates > 0 && step32 > meta->last_step + 1) {
        const uint32_t missed = std::min<uint32_t>(step32 - meta->last_step - 1, kMaxMissedSteps);
        for (uint32_t k = 0; k < missed; ++k) {
          optimizer_->Update(w, w + dim_, zeros_.data(), ++meta->updates, lr);
        }
      }
      meta->count += c;
      meta->updates += 1;
      meta->last_step = step32;
      meta->last_sec = now;
      optimizer_->Update(w, w + dim_, grads + static_cast<size_t>(pos) * dim_, meta->updates, lr, fraction);
      meta->flags |= kReferenced | kDirty;
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
    if (s.spill == nullptr) continue;
    absl::Status status;
    s.spill->ForEach([&](std::byte* row) {
      const auto* meta = reinterpret_cast<const RowMeta*>(row);
      if (!status.ok() || !Expired(*meta, global_step, now)) return false;
      status = DeleteStoreCopy(*meta);
      if (!status.ok()) return false;
      ++dropped;
      return true;
    });
    RETURN_IF_ERROR(status);
  }
  evicted_ttl_.fetch_add(dropped, std::memory_order_relaxed);
  return dropped;
}

TableStats SparseTable::Stats() const {
  TableStats st;
  st.set_name(name());
  uint64_t rows = 0, pending = 0, bytes = 0, spilled_rows = 0, file_bytes = 0;
  for (auto& sp : stripes_) {
    Stripe& s = *sp;
    absl::MutexLock lock(&s.mu);
    rows += s.index.size();
    if (s.spill != nullptr) {
      spilled_rows += s.spill->size();
      file_bytes += s.spill->file_bytes();
    }
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
  st.set_spill_rewrites(spill_rewrites_.load());
  st.set_spill_rewrite_failures(spill_rewrite_failures_.load());
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
  } else if (const std::byte* spilled = s.spill != nullptr ? s.spill->Find(key) : nullptr; spilled != nullptr) {
    row = reinterpret_cast<const char*>(spilled);
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
