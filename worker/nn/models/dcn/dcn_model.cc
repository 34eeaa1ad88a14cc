// DCN: logit = Linear([CrossNet(x), MLP(x)]) -> 1 over x = flat emb, the MLP
// omitted without hidden_units.
#include "common/status.h"
#include "worker/nn/layers/basic/concat.h"
#include "worker/nn/layers/basic/linear.h"
#include "worker/nn/layers/blocks/mlp_block.h"
#include "worker/nn/layers/interaction/cross_net.h"
#include "worker/nn/models/model_options.h"
#include "worker/nn/models/model_registry.h"

namespace ctrps::nn {
namespace {

absl::Status BuildDcn(const ModelConfig& config, const std::vector<SequenceSpec>& sequences,
                      GraphModel* model) {
  ASSIGN_OR_RETURN(MlpOptions mlp, DeepMlpOptions(config));
  mlp.output_dim = 0;
  Graph* g = model->graph();
  Node* cross = g->Add<CrossNet>(model->emb(), config.num_cross_layers(), "crossnet")->out();
  Node* final_in = cross;
  if (!mlp.hidden_units.empty()) {
    Node* deep = AddMlp(g, model->emb(), mlp);
    final_in = g->Add<Concat>(std::vector<Node*>{cross, deep})->out();
  }
  model->set_logits(g->Add<Linear>(final_in, 1, true, "fc")->out());
  return absl::OkStatus();
}

}  // namespace

CTRPS_REGISTER_MODEL(dcn, ModelConfig::DCN, BuildDcn)

}  // namespace ctrps::nn
