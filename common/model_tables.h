// What the servers actually store for a config. Models whose traits say
// needs_linear (a first-order term) keep each key's 1-dim linear weight as an
// extra last column of its embedding row, so one lookup serves both.
#ifndef CTRPS_COMMON_MODEL_TABLES_H_
#define CTRPS_COMMON_MODEL_TABLES_H_

#include <vector>

#include "common/proto/config.pb.h"

namespace ctrps {

// The traits declared on `type`'s enum value in common/proto/config.proto
// (defaults for a value that declares none).
inline const ModelTraits& GetModelTraits(ModelConfig::Type type) {
  const google::protobuf::EnumValueDescriptor* value =
      ModelConfig::Type_descriptor()->FindValueByNumber(type);
  if (value == nullptr) return ModelTraits::default_instance();
  return value->options().GetExtension(model_traits);
}

// Row width on the servers of a table configured with `dim`.
inline int ServerDim(const ExperimentConfig& config, int dim) {
  return dim + (GetModelTraits(config.model().type()).needs_linear() ? 1 : 0);
}

inline std::vector<TableConfig> ServerTables(const ExperimentConfig& config) {
  std::vector<TableConfig> tables(config.table().begin(), config.table().end());
  for (TableConfig& t : tables) t.set_dim(ServerDim(config, t.dim()));
  return tables;
}

}  // namespace ctrps

#endif  // CTRPS_COMMON_MODEL_TABLES_H_
