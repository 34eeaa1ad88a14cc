// AutoInt+: AutoInt's logit plus a DNN's over the flat embeddings:
//   logit = w . flatten(e^L) + b + MLP([e_1, ..., e_F]) -> 1
#include "common/status.h"
#include "worker/nn/layers/basic/add.h"
#include "worker/nn/layers/blocks/mlp_block.h"
#include "worker/nn/models/autoint/autoint_model.h"
#include "worker/nn/models/model_options.h"
#include "worker/nn/models/model_registry.h"

namespace ctrps::nn {
namespace {

absl::Status BuildAutoIntPlus(const ModelConfig& config, const std::vector<SequenceSpec>&,
                              GraphModel* model) {
  ASSIGN_OR_RETURN(MlpOptions mlp, DeepMlpOptions(config));
  ASSIGN_OR_RETURN(Node * attention, AddAutoIntLogit(config, model));
  Graph* g = model->graph();
  Node* dnn = AddMlp(g, model->emb(), mlp);
  model->set_logits(g->Add<Add>(std::vector<Node*>{attention, dnn})->out());
  return absl::OkStatus();
}

}  // namespace

CTRPS_REGISTER_MODEL(autoint_plus, ModelConfig::AUTOINT_PLUS, BuildAutoIntPlus)

}  // namespace ctrps::nn
