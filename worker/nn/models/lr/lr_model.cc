// LR: logit = sum_f w_f + b, w_f the first-order weight of field f's value.
#include "worker/nn/layers/interaction/first_order.h"
#include "worker/nn/models/model_registry.h"

namespace ctrps::nn {
namespace {

absl::Status BuildLr(const ModelConfig& config, const std::vector<SequenceSpec>& sequences,
                     GraphModel* model) {
  model->set_logits(model->graph()->Add<FirstOrder>(model->linear())->out());
  return absl::OkStatus();
}

}  // namespace

CTRPS_REGISTER_MODEL(lr, ModelConfig::LR, BuildLr)

}  // namespace ctrps::nn
