// Reading and writing checkpoint manifests (see common/proto/checkpoint.proto).
#ifndef CTRPS_COMMON_CHECKPOINT_MANIFEST_H_
#define CTRPS_COMMON_CHECKPOINT_MANIFEST_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/proto/checkpoint.pb.h"

namespace ctrps {

inline constexpr char kManifestName[] = "manifest.pbtxt";

// NotFound when `dir` has no manifest (not a complete checkpoint), DataLoss
// when it does not parse.
absl::StatusOr<CheckpointManifest> ReadCheckpointManifest(const std::string& dir);

// Writes dir/manifest.pbtxt through a temporary file and a rename, so a
// reader sees the old state or the whole new one. Returns what
// WriteFileAtomically returns.
absl::Status WriteCheckpointManifest(const std::string& dir, const CheckpointManifest& manifest);

// Writes `bytes` to `path` through a temporary file (path + ".tmp"), fsync
// and rename. ResourceExhausted when the disk, a quota or the file-size
// limit is full; otherwise the code of the failed call's errno (ErrnoError:
// NotFound for a missing directory, PermissionDenied, ...). On failure
// `path` is as it was and the temporary file is removed.
absl::Status WriteFileAtomically(const std::string& path, std::string_view bytes);

// CRC-32C (Castagnoli) of `data`, continuing from `crc`.
uint32_t Crc32c(std::string_view data, uint32_t crc = 0);

// Checkpoint directories ("ckpt-<step>") under `root` that have a manifest,
// newest (highest step) first.
std::vector<std::string> ListCheckpoints(const std::string& root);

// What must match for a checkpoint to be resumed by a config: tables, data
// features and the model (not paths, cluster sizes or epochs).
uint64_t ConfigFingerprint(const ExperimentConfig& config);

}  // namespace ctrps

#endif  // CTRPS_COMMON_CHECKPOINT_MANIFEST_H_
