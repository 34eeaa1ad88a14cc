// The layout of an embedding row on disk and on the wire: in a server's
// memory, in its spill logs, in the store (RocksDB) that checkpoints are
// written through, and so in every checkpoint that export and serving read.
// Checkpoints written by one build are read by the next, so nothing here
// may change without a new checkpoint format.
//
// A row is a RowMeta followed by `dim` weights and `state_dim` optimizer
// state floats, all host byte order (little-endian on every machine we
// run on). In the store it is kept under a 12-byte key: the table id (u32)
// and then the key (u64), both big-endian, so that a table's rows are
// contiguous and in key order.
//
// Header-only: export and serving include it without linking the server.
#ifndef CTRPS_COMMON_ROW_FORMAT_H_
#define CTRPS_COMMON_ROW_FORMAT_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ctrps {

// Per-row metadata, stored in front of the row's floats (in memory, in the
// spill log and in the store), so a lookup touches one place.
struct RowMeta {
  uint64_t key = 0;
  uint32_t count = 0;      // times the key was pushed (including before admission)
  uint32_t updates = 0;    // optimizer steps applied (Adam's t)
  uint32_t last_step = 0;  // global step of the last update
  uint32_t last_sec = 0;   // clock seconds of the last update
  uint32_t flags = 0;      // row_flags below
  uint32_t reserved = 0;
};
static_assert(sizeof(RowMeta) == 32);

// Bits of RowMeta::flags. Their values reach the spill logs and the store,
// but only the server reads them back: a reader of a checkpoint must ignore
// them.
namespace row_flags {
// A memory slot in use, and its CLOCK bit.
constexpr uint32_t kUsed = 1, kReferenced = 2;
// kDirty: changed since it was last written to the store. kInStore: the
// store also holds a copy (current unless kDirty). The two travel with the
// row into the spill log and back.
constexpr uint32_t kDirty = 4, kInStore = 8;
// Meaningful in memory only. kLogCurrent: the stripe's log holds this row's
// current bytes, so evicting it writes nothing. kInLog: the log has a live
// record of the key (current or not).
constexpr uint32_t kLogCurrent = 16, kInLog = 32;
}  // namespace row_flags

// Bytes of a row of `dim` weights and `state_dim` state floats.
constexpr size_t RowBytes(int dim, int state_dim) {
  return sizeof(RowMeta) +
         sizeof(float) * (static_cast<size_t>(dim) + static_cast<size_t>(state_dim));
}

// The store key of a row.
constexpr size_t kRowKeyBytes = 12;

inline std::string EncodeRowKey(uint32_t table_id, uint64_t key) {
  std::string k(kRowKeyBytes, '\0');
  for (int i = 0; i < 4; ++i) k[i] = static_cast<char>(table_id >> (24 - 8 * i));
  for (int i = 0; i < 8; ++i) k[4 + i] = static_cast<char>(key >> (56 - 8 * i));
  return k;
}

// False (outputs untouched) unless `k` is kRowKeyBytes long.
inline bool DecodeRowKey(std::string_view k, uint32_t* table_id, uint64_t* key) {
  if (k.size() != kRowKeyBytes) return false;
  uint32_t id = 0;
  for (int i = 0; i < 4; ++i) id = (id << 8) | static_cast<unsigned char>(k[i]);
  uint64_t v = 0;
  for (int i = 4; i < 12; ++i) v = (v << 8) | static_cast<unsigned char>(k[i]);
  *table_id = id;
  *key = v;
  return true;
}

}  // namespace ctrps

#endif  // CTRPS_COMMON_ROW_FORMAT_H_
