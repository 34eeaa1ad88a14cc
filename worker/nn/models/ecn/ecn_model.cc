// ECN: FCN's Exponential Cross Network alone, over multi-head embeddings,
// trained with plain BCE:
//   x_{l+1} = x_l * c(x_l) + x_l,  logit = mean_h (w . x_L[h]) + b
#include "common/status.h"
#include "worker/nn/models/fcn/fcn_model.h"
#include "worker/nn/models/model_registry.h"

namespace ctrps::nn {
namespace {

absl::Status BuildEcn(const ModelConfig& config, const std::vector<SequenceSpec>&,
                      GraphModel* model) {
  ASSIGN_OR_RETURN(Node * heads, AddFcnHeads(config, model));
  model->set_logits(AddCrossNetworkLogit(config, model, heads, /*exponential=*/true));
  return absl::OkStatus();
}

}  // namespace

CTRPS_REGISTER_MODEL(ecn, ModelConfig::ECN, BuildEcn)

}  // namespace ctrps::nn
