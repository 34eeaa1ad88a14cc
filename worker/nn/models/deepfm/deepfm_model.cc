// DeepFM: logit = FM + MLP(flat emb) -> 1, the two sharing the embeddings.
#include "common/status.h"
#include "worker/nn/layers/basic/add.h"
#include "worker/nn/layers/blocks/mlp_block.h"
#include "worker/nn/layers/interaction/first_order.h"
#include "worker/nn/layers/interaction/fm_interaction.h"
#include "worker/nn/models/model_options.h"
#include "worker/nn/models/model_registry.h"

namespace ctrps::nn {
namespace {

absl::Status BuildDeepFm(const ModelConfig& config, const std::vector<SequenceSpec>& sequences,
                         GraphModel* model) {
  ASSIGN_OR_RETURN(MlpOptions mlp, DeepMlpOptions(config));
  Graph* g = model->graph();
  Node* lr = g->Add<FirstOrder>(model->linear())->out();
  Node* fm = g->Add<FmInteraction>(model->emb(), model->num_fields(), model->dim())->out();
  Node* deep = AddMlp(g, model->emb(), mlp);
  model->set_logits(g->Add<Add>(std::vector<Node*>{lr, fm, deep})->out());
  return absl::OkStatus();
}

}  // namespace

CTRPS_REGISTER_MODEL(deepfm, ModelConfig::DEEPFM, BuildDeepFm)

}  // namespace ctrps::nn
