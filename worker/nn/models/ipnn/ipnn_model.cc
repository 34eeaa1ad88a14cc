// IPNN (PNN with inner products): the embeddings and the inner products of
// all field pairs, concatenated, feed the MLP:
//   logit = MLP([e_1, ..., e_F, <e_1, e_2>, <e_1, e_3>, ..., <e_{F-1}, e_F>]) -> 1
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "worker/nn/layers/basic/concat.h"
#include "worker/nn/layers/blocks/mlp_block.h"
#include "worker/nn/models/ipnn/inner_product.h"
#include "worker/nn/models/model_options.h"
#include "worker/nn/models/model_registry.h"

namespace ctrps::nn {
namespace {

absl::Status BuildIpnn(const ModelConfig& config, const std::vector<SequenceSpec>& sequences,
                       GraphModel* model) {
  if (model->num_fields() < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("model.type IPNN needs at least 2 fields to pair, got ", model->num_fields()));
  }
  ASSIGN_OR_RETURN(MlpOptions mlp, DeepMlpOptions(config));
  Graph* g = model->graph();
  Node* products = g->Add<InnerProduct>(model->emb(), model->num_fields(), model->dim())->out();
  Node* x = g->Add<Concat>(std::vector<Node*>{model->emb(), products})->out();
  model->set_logits(AddMlp(g, x, mlp));
  return absl::OkStatus();
}

}  // namespace

CTRPS_REGISTER_MODEL(ipnn, ModelConfig::IPNN, BuildIpnn)

}  // namespace ctrps::nn
