// Loading and validating the experiment file (conf/<name>.pbtxt).
#ifndef CTRPS_COMMON_CONFIG_H_
#define CTRPS_COMMON_CONFIG_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/proto/config.pb.h"

namespace ctrps {

// Reads `path`, applies `overrides` ("data.dir=/x", "train.epochs=3",
// "model.hidden_units=[400,400]"), fills derived defaults (feature table and
// column names, the config name) and validates the result.
//
// Errors are InvalidArgument with the place and the field:
//   conf/x.pbtxt:12:3: table "item": dim must be > 0, got 0
// NotFound when the file does not exist.
absl::StatusOr<ExperimentConfig> LoadExperimentConfig(
    const std::string& path, const std::vector<std::string>& overrides = {});

// Parses text-format config (for tests and tools); `origin` names it in errors.
absl::StatusOr<ExperimentConfig> ParseExperimentConfig(
    const std::string& text, const std::string& origin,
    const std::vector<std::string>& overrides = {});

// The table config named `name`, or nullptr.
const TableConfig* FindTable(const ExperimentConfig& config, const std::string& name);

// Text format of `config`, for the run directory's resolved config.
std::string ConfigToText(const ExperimentConfig& config);

// train.sparse_sync as servers and workers run it: BOUNDED with
// max_staleness 0 is SYNC.
TrainConfig::SparseSync EffectiveSparseSync(const TrainConfig& train);
// How long a server waits for a step's last push (train.sync_timeout_ms,
// or three quarters of the request timeout).
int64_t SyncTimeoutMs(const ExperimentConfig& config);

}  // namespace ctrps

#endif  // CTRPS_COMMON_CONFIG_H_
