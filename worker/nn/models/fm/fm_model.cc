// FM: logit = LR + sum_{i<j} <e_i, e_j>.
#include "worker/nn/layers/basic/add.h"
#include "worker/nn/layers/interaction/first_order.h"
#include "worker/nn/layers/interaction/fm_interaction.h"
#include "worker/nn/models/model_registry.h"

namespace ctrps::nn {
namespace {

absl::Status BuildFm(const ModelConfig& config, const std::vector<SequenceSpec>& sequences,
                     GraphModel* model) {
  Graph* g = model->graph();
  Node* lr = g->Add<FirstOrder>(model->linear())->out();
  Node* fm = g->Add<FmInteraction>(model->emb(), model->num_fields(), model->dim())->out();
  model->set_logits(g->Add<Add>(std::vector<Node*>{lr, fm})->out());
  return absl::OkStatus();
}

}  // namespace

CTRPS_REGISTER_MODEL(fm, ModelConfig::FM, BuildFm)

}  // namespace ctrps::nn
