// One embedding table on one server: rows in memory (striped hash index over
// slab-allocated rows), cold rows spilled to a log per stripe past the
// server's memory budget (RowLog: appended in large sequential writes, read
// back explicitly, compacted in steps), a KvStore (RocksDB) that
// checkpoints are written through and loaded rows are read from, a sparse
// optimizer, admission and TTL eviction.
//
// Where a row lives: in memory, or in its stripe's log, or (after a
// checkpoint load, until first touched) only in the store. A pull or push
// of a row in the log reads it back into memory (all the request's reads of
// a stripe at once), evicting the coldest rows (CLOCK) to the log. A row
// read back keeps its log record as long as it is not changed, so evicting
// it again writes nothing: pulls alone (an evaluation) cost reads, not
// writes. A row may thus be both in memory and in the log; memory is read
// first. Stats count such a row in memory only.
//
// Thread safety: every public method may be called concurrently. Keys are
// spread over kNumStripes stripes, each with its own mutex; a request locks
// one stripe at a time.
//
// Errors of Pull and Push, by where they come from:
// - Spilling cold rows past the budget: ResourceExhausted when the disk, a
//   quota, the file-size limit or Options::min_free_disk_bytes is reached,
//   or the log has no address left; the errno's code for other write
//   errors (common/status.h ErrnoError). The rows that could not be
//   written stay in memory with their data: nothing is lost, the budget
//   stays over, and later requests try again.
// - Reading spilled rows back: DataLoss when a log record is damaged (a
//   segment shorter than its index says, a record holding another key);
//   the errno's code for a failed read. The rows stay in the log.
// - Reading loaded rows from the store: KvStore::MultiGet's codes; DataLoss
//   for a stored row of the wrong size.
// - Dropping a row past its TTL: KvStore::Write's codes when the store's
//   copy cannot be deleted; the row then stays.
// A request is served stripe by stripe (StripeRange), so one that fails has
// been served for some stripes and not others: see Pull and Push.
#ifndef CTRPS_PS_SPARSE_TABLE_H_
#define CTRPS_PS_SPARSE_TABLE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/proto/config.pb.h"
#include "common/proto/wire.pb.h"
#include "common/row_format.h"
#include "ps/huge_page_allocator.h"
#include "ps/kv_store.h"
#include "ps/row_log.h"
#include "ps/sparse_optimizer.h"

namespace ctrps {

// Memory shared by all tables of one server. Tables add the bytes of the rows
// they hold and spill when the total is over the limit.
class MemoryBudget {
 public:
  explicit MemoryBudget(int64_t limit_bytes) : limit_(limit_bytes) {}
  bool limited() const { return limit_ > 0; }
  int64_t limit() const { return limit_; }
  int64_t used() const { return used_.load(std::memory_order_relaxed); }
  int64_t over() const { return limited() ? used() - limit_ : 0; }
  void Add(int64_t bytes) { used_.fetch_add(bytes, std::memory_order_relaxed); }

 private:
  const int64_t limit_;
  std::atomic<int64_t> used_{0};
};

class SparseTable {
 public:
  static constexpr int kNumStripes = 16;
  // The stripe (lock, index, rows) a key lives in.
  static int StripeOf(uint64_t key) {
    return static_cast<int>((key * 0x9e3779b97f4a7c15ULL) >> 60);
  }
  // Requests are served in blocks of this many keys, each grouped by stripe,
  // so that the scattered reads and writes of a stripe's keys stay within a
  // cache-sized window of the request's values.
  static constexpr size_t kBlockKeys = 2048;
  // Bytes charged to the budget per resident row beyond the row itself (its
  // free-list entry and slack). The stripes' hash indexes are charged as
  // they grow and credited as they shrink.
  static constexpr int kBookkeepingBytesPerRow = 8;
  // A Pull into memory aligned to this many bytes, of rows that are whole
  // lines of it (dim a multiple of 16), writes them without reading the
  // lines first (non-temporal stores). PsClient's shared buffers (64-byte
  // ranges of its arena) and the server's reply frames are so aligned.
  static constexpr size_t kLineBytes = 64;

  struct Options {
    uint32_t table_id = 0;                  // prefix of this table's keys in the store
    KvStore* store = nullptr;               // not owned; null: no checkpoints
    MemoryBudget* budget = nullptr;         // not owned; null: unlimited
    std::string spill_dir;                  // spill files go here; needed with a limited budget
    std::function<uint32_t()> now_seconds;  // clock for TTL, in seconds; default steady clock
    // The spill logs' segment files (RowLog::Options).
    size_t spill_segment_bytes = size_t{64} << 20;
    size_t spill_buffer_bytes = size_t{256} << 10;
    // Spills that would leave the file system with fewer free bytes than
    // this fail (ResourceExhausted) and keep their rows in memory.
    uint64_t min_free_disk_bytes = 0;
    // Stale bytes past which a stripe's log is compacted (RowLog::Options).
    double max_stale_fraction = 0.25;
    // Bytes of a log compacted each time a request reaches its stripe
    // while a compaction is due.
    size_t compact_step_bytes = size_t{4} << 20;
  };

  // InvalidArgument for a bad config (dim <= 0, bad optimizer). A budget that
  // is limited needs a spill_dir (which must exist).
  static absl::StatusOr<std::unique_ptr<SparseTable>> Create(const TableConfig& config,
                                                             const Options& options);
  ~SparseTable();

  const std::string& name() const { return config_.name(); }
  int dim() const { return dim_; }
  const TableConfig& config() const { return config_; }

  // The stripes [first, last). Pull and Push take one so that several
  // threads can serve one request, each on its own stripes: the keys of
  // other stripes are skipped (their rows of `out` are not written), and
  // every copy of a key is in the same stripe, so the result is the same
  // however the request is divided.
  struct StripeRange {
    int first;
    int last;
  };
  static constexpr StripeRange kAllStripes = {0, kNumStripes};

  // The keys of a request grouped by stripe, block by block, so that the
  // threads serving parts of one request (StripeRanges) group them once,
  // sharing the blocks between them (Prepare, GroupBlock). A view: the keys
  // must outlive it. Assign and Prepare reuse the memory of earlier
  // requests.
  class KeyGroups {
   public:
    void Assign(std::span<const uint64_t> keys);
    // Assign in parts, which several threads may share: Prepare once, then
    // GroupBlock for every block in [0, num_blocks()), each block by one
    // thread; the groups are ready once every GroupBlock has returned and
    // happened before the reads.
    void Prepare(std::span<const uint64_t> keys);
    size_t num_blocks() const { return (keys_.size() + kBlockKeys - 1) / kBlockKeys; }
    void GroupBlock(size_t block);
    std::span<const uint64_t> keys() const { return keys_; }

   private:
    friend class SparseTable;
    std::span<const uint64_t> keys_;
    // Block b (keys [b * kBlockKeys, ...)): positions within the block,
    // grouped by stripe, at order_[b * kBlockKeys ...]; stripe s of it at
    // [begin_[b * (kNumStripes + 1) + s], ... + s + 1) of those.
    std::vector<uint32_t> order_;
    std::vector<uint32_t> begin_;
  };

  // Writes the weights of each key to out[i*dim .. (i+1)*dim). A key without
  // a row reads its initial value (a pure function of seed and key) without
  // creating it; with admission on, it reads zeros. Keys may repeat.
  //
  // Errors: those listed at the top of this file. On error, the rows of
  // `out` of the stripes served before it are written and the others are
  // not (which ones is unspecified): discard `out`. A spill that fails after
  // every stripe was served (ResourceExhausted) leaves `out` whole. The
  // table's rows are as before, except that rows read back from the log or
  // the store stay in memory and rows past their TTL may be dropped.
  //
  // catch_up_to > 0, with optimizer.l2_on_missed_steps: a row last updated
  // at a step before catch_up_to - 1 first takes the L2-only updates of the
  // steps since (as a push at step catch_up_to - 1 would, without the
  // gradient), at learning_rate_scale times the table's rate, and counts as
  // updated at catch_up_to - 1. So reads see the row a dense optimizer
  // would hold after that step, and its next push starts from there.
  absl::Status Pull(const KeyGroups& keys, float* out, StripeRange stripes = kAllStripes,
                    uint64_t catch_up_to = 0, float learning_rate_scale = 1.0f);
  absl::Status Pull(std::span<const uint64_t> keys, float* out, uint64_t catch_up_to = 0,
                    float learning_rate_scale = 1.0f);

  // Applies grads[i*dim ..] to each key's row. counts (may be null: 1 each)
  // says how many samples used the key, for admission and statistics.
  // Creates rows for admitted keys; a key not yet admitted is only counted.
  //
  // Errors: those listed at the top of this file. A Push that fails is
  // partly applied: the keys of the stripes served before the error are
  // updated (and counted), the others are not, so sending it again applies
  // part of it twice. A spill that fails after every stripe was served
  // (ResourceExhausted) leaves the whole update applied, in memory.
  absl::Status Push(const KeyGroups& keys, const float* grads, const uint32_t* counts,
                    uint64_t global_step, float learning_rate_scale = 1.0f,
                    float batch_fraction = 1.0f, StripeRange stripes = kAllStripes);
  absl::Status Push(std::span<const uint64_t> keys, const float* grads, const uint32_t* counts,
                    uint64_t global_step, float learning_rate_scale = 1.0f,
                    float batch_fraction = 1.0f);

  // Drops rows not updated within the TTL (in memory, in the log, and their
  // store copies). Returns rows dropped; 0 without a TTL.
  //
  // Errors: KvStore::Write's codes when a store copy cannot be deleted, the
  // log's read errors (DataLoss for a damaged segment, the errno's code for
  // a failed read). Stripes are swept one at a time: rows dropped before
  // the error stay dropped (and are not in stats' evicted count), the rest
  // stay; calling again finishes the sweep.
  absl::StatusOr<uint64_t> EvictExpired(uint64_t global_step);

  TableStats Stats() const;

  // Writes every row (in memory or in the log) changed since its last write into
  // the store, after which the store holds the whole table. Returns rows
  // written.
  //
  // Errors: FailedPrecondition without a store; KvStore::Write's codes
  // (ResourceExhausted for a full disk); the log's read errors (DataLoss for
  // a damaged segment, the errno's code for a failed read). Rows are
  // written in chunks, stripe by stripe, and nothing is lost on error: rows
  // written from memory count as clean, rows written from the log are
  // written again by the next Flush, and the rest stay dirty where they
  // are. The store then holds part of the changes, so it is no checkpoint
  // until a later Flush succeeds.
  absl::StatusOr<uint64_t> Flush();

  // Counts `rows` written into the store by a checkpoint load: misses look
  // them up there until each has been read once.
  void AddLoadedRows(uint64_t rows) { store_only_rows_.fetch_add(rows); }

  uint32_t table_id() const { return options_.table_id; }
  int state_dim() const { return state_dim_; }
  size_t row_bytes() const { return row_bytes_; }

  struct RowSnapshot {
    RowMeta meta;
    std::vector<float> weights;
    std::vector<float> state;
    bool on_disk = false;
  };
  // The stored row of `key`, wherever it is (memory, the log, the store); no
  // side effects. NotFound when the table has no row for `key` (a row of the
  // wrong size in the store counts as none); the log's read errors
  // (DataLoss for a damaged record, the errno's code for a failed read);
  // KvStore::MultiGet's codes.
  absl::StatusOr<RowSnapshot> Peek(uint64_t key);

 private:
  struct Stripe;
  // Lookups of one Pull or Push, added to the table's counters once it is
  // done: both server threads serve parts of a request at once, and an
  // atomic add per stripe group moved the counters' line between the cores
  // some thousand times a request.
  struct Tally {
    uint64_t memory_hits = 0, disk_hits = 0, misses = 0;
  };
  void AddTally(const Tally& tally);

  SparseTable(const TableConfig& config, const Options& options,
              std::unique_ptr<SparseOptimizer> optimizer);

  // Slots of the grouped keys [b, e) of stripe `s` (in the thread's
  // scratch). Keys missing from memory are read back from the stripe's log
  // (one batch of reads for the group), then from the store.
  absl::Status FindSlots(Stripe& s, std::span<const uint64_t> keys, uint32_t b, uint32_t e,
                         Tally& tally) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s.mu);
  // Calls serve(s, b, e) with stripe s locked, for each stripe s of `stripes`
  // that has keys [b, e) = [begin[s], begin[s + 1]) in a block (UseBlock's
  // grouping). A stripe another thread holds is put off until the free ones
  // are served, so two threads on the same stripes of concurrent requests
  // work past each other instead of sleeping on every lock in turn; it
  // blocks only when every stripe still put off is held. serve must not lock
  // another stripe. Returns serve's first error, the stripes not yet served
  // left as they were.
  template <typename Serve>
  absl::Status ForEachStripeGroup(const uint32_t* begin, StripeRange stripes,
                                  Serve serve) ABSL_NO_THREAD_SAFETY_ANALYSIS;
  // Before a request of `stripes` is served: looks up each stripe's keys
  // under its lock, then, with no lock held, reads every record of the
  // logs the request needs at once (RowLog::ReadUnlocked), so that the
  // disk has them all in flight and other requests run meanwhile.
  // FindSlots uses a row read ahead if its key's record is still the one
  // that was read; the rest are read under the lock as before.
  void ReadAhead(const KeyGroups& groups, StripeRange stripes);
  // Points the thread's scratch at block `block` of `groups`; returns its keys.
  static std::span<const uint64_t> UseBlock(const KeyGroups& groups, size_t block);
  // Block `block` of a request; return the keys of `stripes` they handled.
  absl::StatusOr<uint64_t> PullBlock(const KeyGroups& groups, size_t block, float* out,
                                     StripeRange stripes, uint64_t catch_up_to, float lr,
                                     Tally& tally);
  // With l2_on_missed_steps: the L2-only updates of the steps after the
  // row's last update and before `step`, at most kMaxMissedSteps of them.
  void CatchUp(RowMeta* meta, float* w, uint32_t step, float lr) const;
  absl::StatusOr<uint64_t> PushBlock(const KeyGroups& groups, size_t block, const float* grads,
                                     const uint32_t* counts, uint64_t global_step, float lr,
                                     float fraction, StripeRange stripes, Tally& tally);
  RowMeta* MetaOf(const Stripe& s, uint32_t slot) const;
  // The first `bytes` of the row in `slot` (none for kNoSlot or kInFile).
  void PrefetchRow(const Stripe& s, uint32_t slot, size_t bytes) const;
  float* WeightsOf(const Stripe& s, uint32_t slot) const;
  uint32_t AllocSlot(Stripe& s, uint64_t key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s.mu);
  void FreeSlot(Stripe& s, uint32_t slot) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s.mu);
  // Bytes the stripe's index grew (or, negative, shrank) by since it was
  // last charged to the budget; it now counts as charged.
  int64_t IndexChargeChange(Stripe& s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s.mu);
  // Shrinks the index of a stripe that lost most of its rows (a spill, TTL
  // eviction) and gives its memory back to the budget.
  void ShrinkIndex(Stripe& s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s.mu);
  // Gives back the memory of free slots when the stripe holds far fewer rows
  // than slots it ever handed out (after the logs' index grew into the
  // budget, or a TTL sweep): rows move down into free slots, and the
  // chunks or pages above them are released. Slots found earlier become
  // invalid: call it only between stripe groups.
  void ShrinkSlab(Stripe& s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s.mu);
  // Frees a row and deletes its copy in the store.
  absl::Status DropRow(Stripe& s, uint32_t slot) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s.mu);
  // Deletes the store's copy of a row whose meta says it has one.
  absl::Status DeleteStoreCopy(const RowMeta& meta);
  // Moves a row read from the log at `addr` into memory; returns its slot.
  uint32_t BringBack(Stripe& s, const std::byte* row, uint32_t addr)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(s.mu);
  // A log record's store flags as of now: a record appended before the
  // stripe's last flush was written to the store by it if it was dirty.
  uint32_t StoreFlagsOf(const Stripe& s, const RowMeta& meta, uint32_t addr) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(s.mu);
  // Bytes the stripe's log (its index and buffer) grew or shrank by since
  // last charged to the budget; it now counts as charged.
  int64_t LogChargeChange(Stripe& s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s.mu);
  // Reads the rows of `keys` (in neither memory nor the log) from the
  // store into memory. slots[i] becomes the new slot or stays kNoSlot.
  absl::Status Promote(Stripe& s, const std::vector<uint64_t>& keys, std::vector<uint32_t>* slots,
                       Tally& tally) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s.mu);
  // Spills this stripe's coldest rows until the budget is no longer over,
  // if the stripe holds at least its share of the table's rows (any_stripe:
  // regardless).
  absl::Status SpillIfOver(Stripe& s, bool any_stripe = false) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s.mu);
  // After a request: while the budget is over, spills from the biggest stripe.
  absl::Status Settle();
  // A step of compaction for each of `stripes` whose log is due one, once a
  // request is served. A failed step is logged and counted; the request
  // goes on (the log is whole).
  void CompactIfDue(StripeRange stripes);
  // The store key of this table's row `key` (EncodeRowKey).
  std::string DiskKey(uint64_t key) const;
  bool Expired(const RowMeta& m, uint64_t global_step, uint32_t now) const;
  bool AdmittedAt(uint64_t key, uint32_t count) const;

  const TableConfig config_;
  const Options options_;
  const std::unique_ptr<SparseOptimizer> optimizer_;
  const int dim_;
  const int state_dim_;
  const size_t row_bytes_;      // meta + weights + state
  const int64_t charge_bytes_;  // row_bytes_ + kBookkeepingBytesPerRow
  const bool admission_;
  const std::vector<float> zeros_;  // a zero gradient, for missed-step catch-up
  std::vector<std::unique_ptr<Stripe>> stripes_;
  // Written while requests run: apart from the fields above, which every
  // lookup reads, so that writing them does not take those from the other
  // core.
  alignas(64) std::atomic<int64_t> store_only_rows_{0};  // loaded, not yet read
  std::atomic<int64_t> rows_in_memory_{0};
  std::atomic<uint64_t> memory_hits_{0}, disk_hits_{0}, misses_{0}, spilled_{0}, evicted_ttl_{0};
  std::atomic<uint64_t> compaction_failures_{0};
  std::atomic<uint64_t> read_ahead_{0};    // records read by ReadAhead
  std::atomic<bool> has_log_rows_{false};  // some stripe made a log
  std::atomic<int> reading_ahead_{
      0};  // ReadAhead calls between their first lock and their last read
  std::atomic<uint64_t> pulled_keys_{0}, pushed_keys_{0};
};

}  // namespace ctrps

#endif  // CTRPS_PS_SPARSE_TABLE_H_
