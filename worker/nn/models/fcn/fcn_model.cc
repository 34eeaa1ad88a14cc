// FCN (DCNv3): the Exponential Cross Network (x_{l+1} = x_l * c(x_l) + x_l)
// and the Linear Cross Network (x_{l+1} = x_0 * c(x_l) + x_l), with c the
// self-masked projection of SelfMaskCross, over multi-head embeddings; the
// logit is the mean of their two logits, trained with Tri-BCE:
//   logit = (logit_ECN + logit_LCN) / 2
//   L = l + sum_{k in ECN, LCN} max(0, l_k - l) l_k
#include "worker/nn/models/fcn/fcn_model.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "worker/nn/layers/basic/add.h"
#include "worker/nn/layers/basic/dropout.h"
#include "worker/nn/layers/basic/head_mean_linear.h"
#include "worker/nn/layers/basic/head_split.h"
#include "worker/nn/layers/interaction/self_mask_cross.h"
#include "worker/nn/loss_rule.h"
#include "worker/nn/models/model_registry.h"

namespace ctrps::nn {

absl::StatusOr<Node*> AddFcnHeads(const ModelConfig& config, GraphModel* model) {
  const int heads = config.fcn().num_heads();
  if (model->dim() % (2 * heads) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model.type ", ModelConfig::Type_Name(config.type()), ": the embedding dim (", model->dim(),
        ") must be a multiple of 2 * model.fcn.num_heads (", 2 * heads, ")"));
  }
  return model->graph()->Add<HeadSplit>(model->emb(), model->num_fields(), heads)->out();
}

Node* AddCrossNetworkLogit(const ModelConfig& config, GraphModel* model, Node* heads,
                           bool exponential) {
  const FcnConfig& c = config.fcn();
  const int layers = exponential ? c.num_deep_cross_layers() : c.num_shallow_cross_layers();
  const float dropout = exponential ? c.deep_net_dropout() : c.shallow_net_dropout();
  const std::string name = exponential ? "ecn" : "lcn";
  Graph* g = model->graph();
  Node* x = heads;
  for (int i = 0; i < layers; ++i) {
    Node* x0 = exponential ? x : heads;
    x = g->Add<SelfMaskCross>(x0, x, c.num_heads(), c.layer_norm(), absl::StrCat(name, i),
                              c.batch_norm())
            ->out();
    if (dropout > 0.0f) x = g->Add<Dropout>(x, dropout)->out();
  }
  return g->Add<HeadMeanLinear>(x, c.num_heads(), name + ".fc")->out();
}

namespace {

absl::Status BuildFcn(const ModelConfig& config, const std::vector<SequenceSpec>&,
                      GraphModel* model) {
  ASSIGN_OR_RETURN(Node * heads, AddFcnHeads(config, model));
  Node* deep = AddCrossNetworkLogit(config, model, heads, /*exponential=*/true);
  Node* shallow = AddCrossNetworkLogit(config, model, heads, /*exponential=*/false);
  model->set_logits(model->graph()->Add<Add>(std::vector<Node*>{deep, shallow}, 0.5f)->out());
  model->set_loss(LossRule::kTriBce, {deep, shallow});
  return absl::OkStatus();
}

}  // namespace

CTRPS_REGISTER_MODEL(fcn, ModelConfig::FCN, BuildFcn)

}  // namespace ctrps::nn
