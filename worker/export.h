// Export of a checkpoint for serving: the model config, the dense values and
// buffers (no optimizer state) and, per table and source shard, the embedding
// rows' weights (no optimizer state, no metadata) in f32 or f16. Formats in
// common/proto/checkpoint.proto; the predictor (worker/predictor.h) opens the
// result without a running PS.
#ifndef CTRPS_WORKER_EXPORT_H_
#define CTRPS_WORKER_EXPORT_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "common/proto/checkpoint.pb.h"

namespace ctrps {

// Exports the checkpoint in `checkpoint_dir` (a ckpt-<step> directory with
// its manifest.pbtxt) to `out_dir`:
//   - every server-<j>/ RocksDB (j < num_servers) is opened read-only and
//     each table's rows become `<table>.<j>.emb`, keys ascending; rows whose
//     RowMeta.count is below `min_count` are dropped;
//   - values are written as f16 (round to nearest even) when `fp16`, else f32;
//   - dense.bin holds the checkpoint's dense values then buffers;
//   - manifest.pbtxt (an ExportManifest) is written last. A table's
//     missing_is_zero is set when it has admission (min_count > 1 or
//     admit_probability < 1) or `min_count` > 0: a key without a row then
//     reads zeros, otherwise its initial value.
// Everything is written to a temporary directory beside `out_dir`, synced,
// then renamed to `out_dir`; an existing export (or empty directory) at
// `out_dir` is replaced, and a failed export leaves `out_dir` as it was.
// Prints nothing. Returns the manifest written (rows per table).
//
// Errors: NotFound naming the file or directory (no manifest.pbtxt, a
// server-<j> directory or dense file missing); DataLoss naming the file for
// a corrupt checkpoint (a manifest that does not parse or is inconsistent, a
// key that is not 12 bytes, a row of the wrong size or of an unknown table,
// a dense file of the wrong size); FailedPrecondition if `out_dir` exists and
// is neither empty nor an export; ResourceExhausted when a write finds the
// disk, a quota or the file-size limit full; for other failed system calls,
// the code of their errno (common/status.h ErrnoError).
absl::StatusOr<ExportManifest> ExportFromCheckpoint(const std::string& checkpoint_dir,
                                                    const std::string& out_dir, bool fp16,
                                                    uint32_t min_count);

// Reads `<export_dir>/manifest.pbtxt`. NotFound if it does not exist (not an
// export, or not a complete one); DataLoss naming the file and line if it
// does not parse.
absl::StatusOr<ExportManifest> ReadExportManifest(const std::string& export_dir);

}  // namespace ctrps

#endif  // CTRPS_WORKER_EXPORT_H_
