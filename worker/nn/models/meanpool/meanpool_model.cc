// MEANPOOL, the no-attention baseline of the sequence models: each
// sequence's slot = the mean of its valid rows (0 for none); then
// logit = MLP(flat emb) -> 1.
#include "worker/nn/models/model_registry.h"
#include "worker/nn/models/sequence_model.h"

namespace ctrps::nn {
namespace {

absl::Status BuildMeanPool(const ModelConfig& config, const std::vector<SequenceSpec>& sequences,
                           GraphModel* model) {
  auto pool = [&](size_t i, const SequenceSpec& spec, Node* seq) -> SequencePooling* {
    return model->graph()->Add<MeanSequencePooling>(seq, spec.max_len, model->dim());
  };
  return BuildPooledSequenceModel(config, sequences, pool, model);
}

}  // namespace

CTRPS_REGISTER_MODEL(meanpool, ModelConfig::MEANPOOL, BuildMeanPool)

}  // namespace ctrps::nn
