// Per-table key de-duplication of a batch, before the pull, and the reverse
// for gradients (sum per unique key) before the push.
//
// Fields that share a table (FeatureConfig.table) are de-duplicated together.
// For table t, the key occurrences are the keys of its fields concatenated in
// config order ("occurrence order"):
//
//   KeyDedup dedup(config.data());
//   dedup.Run(batch);
//   for (const TableKeys& t : dedup.tables()) {
//     Pull(t.name, t.unique_keys) -> rows (unique_keys.size() x dim)
//     for slot in t.fields: GatherRows(t, slot, rows, dim, field_rows)
//     ... forward / backward: field gradients per occurrence ...
//     std::fill(unique_grads, 0); AccumulateFieldGradients(t, slot, g, dim, unique_grads)
//     Push(t.name, t.unique_keys, unique_grads)
//   }
#ifndef CTRPS_WORKER_DATA_KEY_DEDUP_H_
#define CTRPS_WORKER_DATA_KEY_DEDUP_H_

#include <cstdint>
#include <string>
#include <vector>

#include "common/proto/config.pb.h"
#include "worker/data/batch.h"

namespace ctrps {

// Maps 64-bit keys to dense indices 0..n-1. Open addressing with linear
// probing; Clear() is O(1) (a generation stamp), so one map is reused for
// every batch without freeing or touching its memory.
class KeyIndexMap {
 public:
  // Forgets all keys and makes room for `expected` keys without growing.
  void Clear(size_t expected);
  // The index of `key`, inserting it as size() if new; *inserted says which.
  int32_t FindOrInsert(uint64_t key, bool* inserted);
  int32_t size() const { return size_; }

 private:
  struct Slot {
    uint64_t key;
    int32_t value;
    uint32_t generation;
  };
  void Grow();

  std::vector<Slot> slots_;
  uint64_t mask_ = 0;
  int shift_ = 64;
  uint32_t generation_ = 0;
  int32_t size_ = 0;
};

// The de-duplicated keys of one table for one batch.
struct TableKeys {
  std::string name;
  // Batch field indices of this table's fields, in config order. "slot" s
  // below is a position in this vector.
  std::vector<int> fields;
  // Occurrences of slot s are index[field_begin[s] .. field_begin[s+1]);
  // size fields.size() + 1.
  std::vector<int32_t> field_begin;
  // Each distinct key once, in order of first occurrence.
  std::vector<uint64_t> unique_keys;
  // How many occurrences each unique key has.
  std::vector<int32_t> counts;
  // For every occurrence, its position in unique_keys.
  std::vector<int32_t> index;
};

// Not thread-safe; one per training thread. Buffers are reused across Run()s.
class KeyDedup {
 public:
  // Groups the configured features by table (tables in order of first use).
  explicit KeyDedup(const DataConfig& data);

  // De-duplicates `batch` (shaped by the same DataConfig).
  void Run(const Batch& batch);

  const std::vector<TableKeys>& tables() const { return tables_; }

 private:
  std::vector<TableKeys> tables_;
  KeyIndexMap map_;
};

// unique_grads[u] = sum of occurrence_grads[o] over occurrences o with
// index[o] == u; rows of `dim` floats. `occurrence_grads` holds
// index.size() rows in occurrence order; `unique_grads` unique_keys.size()
// rows and is overwritten.
void SumGradients(const TableKeys& table, const float* occurrence_grads, int dim,
                  float* unique_grads);

// Adds the gradient rows of slot `slot` (one row per key of that field, in
// batch order) into `unique_grads` (not cleared first).
void AccumulateFieldGradients(const TableKeys& table, int slot, const float* field_grads, int dim,
                              float* unique_grads);

// The reverse for the forward pass: field_rows[k] = unique_rows[index of key
// k of slot `slot`].
void GatherRows(const TableKeys& table, int slot, const float* unique_rows, int dim,
                float* field_rows);

}  // namespace ctrps

#endif  // CTRPS_WORKER_DATA_KEY_DEDUP_H_
