#include "worker/nn/models/sequence_model.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "worker/nn/layers/basic/replace_fields.h"
#include "worker/nn/layers/blocks/mlp_block.h"
#include "worker/nn/models/model_options.h"

namespace ctrps::nn {

absl::Status BuildPooledSequenceModel(const ModelConfig& config,
                                      const std::vector<SequenceSpec>& sequences,
                                      const PoolingFactory& make_pool, GraphModel* model) {
  ASSIGN_OR_RETURN(MlpOptions mlp, DeepMlpOptions(config));
  std::vector<std::pair<int, Node*>> pooled;
  for (size_t i = 0; i < sequences.size(); ++i) {
    Node* seq = model->AddSequence(sequences[i]);
    SequencePooling* pool = make_pool(i, sequences[i], seq);
    model->set_pooling(i, pool);
    pooled.emplace_back(sequences[i].field, pool->out());
  }
  Graph* g = model->graph();
  Node* x = g->Add<ReplaceFields>(model->emb(), model->dim(), std::move(pooled))->out();
  model->set_logits(AddMlp(g, x, mlp));
  return absl::OkStatus();
}

absl::Status CheckSequenceTargets(const ModelConfig& config, int num_fields,
                                  const std::vector<SequenceSpec>& sequences) {
  const std::string type = ModelConfig::Type_Name(config.type());
  std::vector<bool> is_sequence(num_fields, false);
  for (const SequenceSpec& s : sequences) is_sequence[s.field] = true;
  for (size_t i = 0; i < sequences.size(); ++i) {
    const SequenceSpec& s = sequences[i];
    if (s.target_field < 0 || s.target_field >= num_fields) {
      return absl::InvalidArgumentError(
          absl::StrCat("model.type ", type, ": sequence ", i, " (field ", s.field,
                       ") needs a target field in [0, ", num_fields, "), got ", s.target_field,
                       " (set the SEQUENCE feature's `target`)"));
    }
    if (is_sequence[s.target_field]) {
      return absl::InvalidArgumentError(absl::StrCat("model: sequence ", i, " has target field ",
                                                     s.target_field,
                                                     ", which is itself a sequence field"));
    }
  }
  return absl::OkStatus();
}

}  // namespace ctrps::nn
