// DNN: logit = MLP(flat emb) -> 1.
#include "common/status.h"
#include "worker/nn/layers/blocks/mlp_block.h"
#include "worker/nn/models/model_options.h"
#include "worker/nn/models/model_registry.h"

namespace ctrps::nn {
namespace {

absl::Status BuildDnn(const ModelConfig& config, const std::vector<SequenceSpec>& sequences,
                      GraphModel* model) {
  ASSIGN_OR_RETURN(MlpOptions mlp, DeepMlpOptions(config));
  model->set_logits(AddMlp(model->graph(), model->emb(), mlp));
  return absl::OkStatus();
}

}  // namespace

CTRPS_REGISTER_MODEL(dnn, ModelConfig::DNN, BuildDnn)

}  // namespace ctrps::nn
