// The store a table's checkpoints are written through and checkpoint loads
// are read from (cold rows spill to SpillFile, not here). RocksDbStore is the
// real one; the in-memory store stands in for it in tests. Thread-safe.
#ifndef CTRPS_PS_KV_STORE_H_
#define CTRPS_PS_KV_STORE_H_

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace rocksdb {
class Status;
}  // namespace rocksdb

namespace ctrps {

class KvStore {
 public:
  virtual ~KvStore() = default;

  struct Op {
    std::string_view key;
    std::string_view value;  // ignored for deletes
    bool is_delete = false;
  };
  // Applies the ops in order, atomically: on error none of them is applied.
  // RocksDB: ResourceExhausted when the disk is full; DataLoss when the
  // store is corrupt; InvalidArgument for what RocksDB calls one;
  // Unavailable for other I/O errors. The in-memory store never fails.
  virtual absl::Status Write(const std::vector<Op>& ops) = 0;

  // For each key, found[i] tells whether it exists and values[i] holds it.
  // found gets keys.size() entries; values grows to at least that and keeps
  // any further entries, so a caller reusing it reuses the strings' buffers.
  // A missing key is not an error. Errors as Write (DataLoss for a damaged
  // file, Unavailable for a failed read); found and values are then
  // partly filled and must not be used. Changes nothing in the store.
  virtual absl::Status MultiGet(const std::vector<std::string_view>& keys,
                                std::vector<std::string>* values, std::vector<bool>* found) = 0;

  // A consistent copy of the store in `dir` (must not exist). RocksDB hard
  // links its immutable files, so only what changed since the last
  // checkpoint is written. Unimplemented for the in-memory store; errors as
  // Write otherwise (InvalidArgument when `dir` exists). The copy is built
  // beside `dir` and renamed into place, so a failed one leaves no `dir`;
  // the store's contents are unchanged either way.
  virtual absl::Status Checkpoint(const std::string& dir) = 0;
};

// Calls fn(key, value) for every entry of the RocksDB at `dir`, opened
// read-only, in key order. Stops at fn's first error and returns it.
// NotFound when `dir` is not a RocksDB; DataLoss when it cannot be opened
// or is damaged (checksums are verified). The entries are not changed.
absl::Status ScanRocksDb(const std::string& dir,
                         const std::function<absl::Status(std::string_view, std::string_view)>& fn);

// RocksDB under `dir` (created if missing; an existing store is reopened).
// The store checkpoints are written through and loads are read from: no
// WAL, bloom filters so absent keys cost no read.
// write_buffer_bytes: the memtable's size before it is flushed to an SST
// file (tests pass a small one so that reads come from files). Errors: the
// code of the errno when `dir` cannot be created (ErrnoError); as Write
// when RocksDB cannot open it.
absl::StatusOr<std::unique_ptr<KvStore>> OpenRocksDbStore(const std::string& dir,
                                                          size_t write_buffer_bytes = 64 << 20);

std::unique_ptr<KvStore> NewMemoryKvStore();

// A RocksDB status as ours, prefixed with `what`: Corruption -> DataLoss,
// InvalidArgument -> InvalidArgument, a full disk or quota or a file too
// large -> ResourceExhausted, permission denied -> PermissionDenied, anything
// else Unavailable.
absl::Status FromRocks(const rocksdb::Status& s, std::string_view what);

}  // namespace ctrps

#endif  // CTRPS_PS_KV_STORE_H_
