// DIN: each sequence's slot = sum_l a_l h_l, with
// a_l = attention MLP over [h_l, t, h_l - t, h_l * t], t the target field's
// embedding (attention_hidden_units, attention_activation; weights not
// softmax-normalised, see din_attention.h); then logit = MLP(flat emb) -> 1.
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "worker/nn/layers/attention/din_attention.h"
#include "worker/nn/models/model_options.h"
#include "worker/nn/models/model_registry.h"
#include "worker/nn/models/sequence_model.h"

namespace ctrps::nn {
namespace {

absl::Status BuildDin(const ModelConfig& config, const std::vector<SequenceSpec>& sequences,
                      GraphModel* model) {
  RETURN_IF_ERROR(CheckSequenceTargets(config, model->num_fields(), sequences));
  MlpOptions attention;
  absl::StatusOr<Activation> act = ParseActivation(config.attention_activation());
  if (!act.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("model.attention_activation: ", act.status().message()));
  }
  attention.activation = *act;
  attention.hidden_units = Units(config.attention_hidden_units());
  auto pool = [&](size_t i, const SequenceSpec& spec, Node* seq) -> SequencePooling* {
    attention.name = absl::StrCat("din.", i, ".att");
    const int64_t query_offset = static_cast<int64_t>(spec.target_field) * model->dim();
    return model->graph()->Add<DinAttention>(seq, spec.max_len, model->emb(), query_offset,
                                             attention);
  };
  return BuildPooledSequenceModel(config, sequences, pool, model);
}

}  // namespace

CTRPS_REGISTER_MODEL(din, ModelConfig::DIN, BuildDin)

}  // namespace ctrps::nn
