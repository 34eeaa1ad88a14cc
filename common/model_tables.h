// What the servers actually store for a config. Models with a first-order
// term (LR, FM, Wide&Deep, DeepFM) keep each key's 1-dim linear weight as an
// extra last column of its embedding row, so one lookup serves both.
#ifndef CTRPS_COMMON_MODEL_TABLES_H_
#define CTRPS_COMMON_MODEL_TABLES_H_

#include <vector>

#include "common/proto/config.pb.h"

namespace ctrps {

inline bool ModelNeedsLinear(ModelConfig::Type type) {
  return type == ModelConfig::LR || type == ModelConfig::FM || type == ModelConfig::WIDE_DEEP ||
         type == ModelConfig::DEEPFM;
}

// Row width on the servers of a table configured with `dim`.
inline int ServerDim(const ExperimentConfig& config, int dim) {
  return dim + (ModelNeedsLinear(config.model().type()) ? 1 : 0);
}

inline std::vector<TableConfig> ServerTables(const ExperimentConfig& config) {
  std::vector<TableConfig> tables(config.table().begin(), config.table().end());
  for (TableConfig& t : tables) t.set_dim(ServerDim(config, t.dim()));
  return tables;
}

}  // namespace ctrps

#endif  // CTRPS_COMMON_MODEL_TABLES_H_
