// Wide&Deep: logit = sum_f w_f (no bias) + MLP(flat emb) -> 1.
#include "common/status.h"
#include "worker/nn/layers/basic/add.h"
#include "worker/nn/layers/blocks/mlp_block.h"
#include "worker/nn/layers/interaction/first_order.h"
#include "worker/nn/models/model_options.h"
#include "worker/nn/models/model_registry.h"

namespace ctrps::nn {
namespace {

absl::Status BuildWideDeep(const ModelConfig& config, const std::vector<SequenceSpec>& sequences,
                           GraphModel* model) {
  ASSIGN_OR_RETURN(MlpOptions mlp, DeepMlpOptions(config));
  Graph* g = model->graph();
  Node* wide = g->Add<FirstOrder>(model->linear(), /*use_bias=*/false)->out();
  Node* deep = AddMlp(g, model->emb(), mlp);
  model->set_logits(g->Add<Add>(std::vector<Node*>{wide, deep})->out());
  return absl::OkStatus();
}

}  // namespace

CTRPS_REGISTER_MODEL(wide_deep, ModelConfig::WIDE_DEEP, BuildWideDeep)

}  // namespace ctrps::nn
