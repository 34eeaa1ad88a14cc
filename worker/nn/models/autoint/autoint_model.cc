// AutoInt: stacked multi-head self-attention over the field embeddings, then
// a linear layer over the attended fields:
//   e^0 = [e_1, ..., e_F],  e^l = relu(LN(MHSA(e^{l-1}) + residual))
//   logit = w . flatten(e^L) + b
#include "worker/nn/models/autoint/autoint_model.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "worker/nn/layers/attention/multi_head_self_attention.h"
#include "worker/nn/layers/basic/linear.h"
#include "worker/nn/models/model_registry.h"

namespace ctrps::nn {

absl::StatusOr<Node*> AddAutoIntLogit(const ModelConfig& config, GraphModel* model) {
  const AutoIntConfig& c = config.autoint();
  if (c.attention_dim() % c.num_heads() != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("model.autoint.attention_dim (", c.attention_dim(),
                     ") must be a multiple of model.autoint.num_heads (", c.num_heads(), ")"));
  }
  Graph* g = model->graph();
  Node* x = model->emb();
  for (int i = 0; i < c.attention_layers(); ++i) {
    SelfAttentionOptions options;
    options.num_fields = model->num_fields();
    options.attention_dim = c.attention_dim();
    options.num_heads = c.num_heads();
    options.use_residual = c.use_residual();
    options.use_scale = c.use_scale();
    options.layer_norm = c.layer_norm();
    options.dropout = c.attention_dropout();
    options.name = absl::StrCat("attention", i);
    x = g->Add<MultiHeadSelfAttention>(x, options)->out();
  }
  return g->Add<Linear>(x, 1, /*use_bias=*/true, "fc")->out();
}

namespace {

absl::Status BuildAutoInt(const ModelConfig& config, const std::vector<SequenceSpec>&,
                          GraphModel* model) {
  ASSIGN_OR_RETURN(Node * logit, AddAutoIntLogit(config, model));
  model->set_logits(logit);
  return absl::OkStatus();
}

}  // namespace

CTRPS_REGISTER_MODEL(autoint, ModelConfig::AUTOINT, BuildAutoInt)

}  // namespace ctrps::nn
