// DCNv2 over x = flat emb:
//   parallel (default): logit = Linear([CrossNetV2(x), MLP(x)]) -> 1
//   stacked:            logit = Linear(MLP(CrossNetV2(x))) -> 1
//   without hidden_units: logit = Linear(CrossNetV2(x)) -> 1
// low_rank > 0 factors each cross layer's W as U V.
#include "common/status.h"
#include "worker/nn/layers/basic/concat.h"
#include "worker/nn/layers/basic/linear.h"
#include "worker/nn/layers/blocks/mlp_block.h"
#include "worker/nn/layers/interaction/cross_net_v2.h"
#include "worker/nn/models/model_options.h"
#include "worker/nn/models/model_registry.h"

namespace ctrps::nn {
namespace {

absl::Status BuildDcnV2(const ModelConfig& config, const std::vector<SequenceSpec>& sequences,
                        GraphModel* model) {
  ASSIGN_OR_RETURN(MlpOptions mlp, DeepMlpOptions(config));
  mlp.output_dim = 0;
  Graph* g = model->graph();
  Node* x = model->emb();
  Node* cross =
      g->Add<CrossNetV2>(x, config.num_cross_layers(), config.low_rank(), "crossnet")->out();
  Node* final_in = cross;
  if (!mlp.hidden_units.empty() && config.stacked()) {
    final_in = AddMlp(g, cross, mlp);
  } else if (!mlp.hidden_units.empty()) {
    final_in = g->Add<Concat>(std::vector<Node*>{cross, AddMlp(g, x, mlp)})->out();
  }
  model->set_logits(g->Add<Linear>(final_in, 1, true, "fc")->out());
  return absl::OkStatus();
}

}  // namespace

CTRPS_REGISTER_MODEL(dcnv2, ModelConfig::DCNV2, BuildDcnV2)

}  // namespace ctrps::nn
