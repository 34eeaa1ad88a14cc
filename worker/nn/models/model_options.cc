#include "worker/nn/models/model_options.h"

#include "common/status.h"

namespace ctrps::nn {

std::vector<int> Units(const google::protobuf::RepeatedField<int32_t>& units) {
  return std::vector<int>(units.begin(), units.end());
}

absl::StatusOr<MlpOptions> DeepMlpOptions(const ModelConfig& config) {
  MlpOptions mlp;
  ASSIGN_OR_RETURN(mlp.activation, ParseActivation(config.activation()));
  mlp.hidden_units = Units(config.hidden_units());
  mlp.dropout = config.dropout();
  mlp.batch_norm = config.batch_norm();
  mlp.output_dim = 1;
  mlp.name = "dnn";
  return mlp;
}

}  // namespace ctrps::nn
