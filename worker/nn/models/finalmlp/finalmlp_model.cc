// FinalMLP: two MLP streams over the flat embeddings, each behind its own
// feature selection (a learned gate per field), fused by a multi-head
// bilinear layer into the logit:
//   logit = BilinearFusion(MLP1(FS1(x)), MLP2(FS2(x)), num_heads)
#include <cstdint>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "worker/nn/layers/basic/select_fields.h"
#include "worker/nn/layers/blocks/feature_selection.h"
#include "worker/nn/layers/blocks/mlp_block.h"
#include "worker/nn/layers/interaction/bilinear_fusion.h"
#include "worker/nn/models/model_options.h"
#include "worker/nn/models/model_registry.h"

namespace ctrps::nn {
namespace {

absl::Status BuildFinalMlp(const ModelConfig& config, const std::vector<SequenceSpec>& sequences,
                           GraphModel* model) {
  Graph* g = model->graph();
  Node* flat = model->emb();
  ASSIGN_OR_RETURN(Activation activation, ParseActivation(config.activation()));
  const int heads = config.num_heads();
  // Context fields feed only the gates; the streams read the other fields.
  const int num_fields = model->num_fields();
  std::vector<bool> is_context(num_fields, false);
  auto context_of = [&](const google::protobuf::RepeatedField<int32_t>& fields,
                        const char* name) -> absl::StatusOr<std::vector<int>> {
    std::vector<int> out;
    for (int f : fields) {
      if (f >= num_fields) {
        return absl::InvalidArgumentError(absl::StrCat(
            "model.", name, ": field ", f, " is not below the ", num_fields, " fields"));
      }
      for (int seen : out) {
        if (seen == f) {
          return absl::InvalidArgumentError(
              absl::StrCat("model.", name, ": field ", f, " is listed twice"));
        }
      }
      is_context[f] = true;
      out.push_back(f);
    }
    return out;
  };
  ASSIGN_OR_RETURN(std::vector<int> ctx1_fields,
                   context_of(config.fs1_context_fields(), "fs1_context_fields"));
  ASSIGN_OR_RETURN(std::vector<int> ctx2_fields,
                   context_of(config.fs2_context_fields(), "fs2_context_fields"));
  if ((!ctx1_fields.empty() || !ctx2_fields.empty()) && !config.use_feature_selection()) {
    return absl::InvalidArgumentError(
        "model.fs1_context_fields / fs2_context_fields need use_feature_selection");
  }
  std::vector<int> stream_fields;
  for (int f = 0; f < num_fields; ++f) {
    if (!is_context[f]) stream_fields.push_back(f);
  }
  if (stream_fields.empty()) {
    return absl::InvalidArgumentError(
        "model.fs1_context_fields / fs2_context_fields: no field is left for the MLP streams");
  }
  if (static_cast<int>(stream_fields.size()) < num_fields) {
    flat = g->Add<SelectFields>(flat, model->dim(), stream_fields)->out();
  }
  const auto& units1 = config.mlp1_hidden_units();
  const auto& units2 = config.mlp2_hidden_units();
  const int64_t width1 = units1.empty() ? flat->width() : units1[units1.size() - 1];
  const int64_t width2 = units2.empty() ? flat->width() : units2[units2.size() - 1];
  if (width1 % heads != 0 || width2 % heads != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model.num_heads (", heads, ") must divide the output widths of both MLP streams (", width1,
        ", ", width2, ")"));
  }
  Node* feat1 = flat;
  Node* feat2 = flat;
  if (config.use_feature_selection()) {
    const std::vector<int> fs_units = Units(config.fs_hidden_units());
    Node* ctx1 = ctx1_fields.empty()
                     ? nullptr
                     : g->Add<SelectFields>(model->emb(), model->dim(), ctx1_fields)->out();
    Node* ctx2 = ctx2_fields.empty()
                     ? nullptr
                     : g->Add<SelectFields>(model->emb(), model->dim(), ctx2_fields)->out();
    feat1 = AddFeatureSelection(g, flat, ctx1, model->dim(), fs_units, "fs1");
    feat2 = AddFeatureSelection(g, flat, ctx2, model->dim(), fs_units, "fs2");
  }
  MlpOptions mlp1;
  mlp1.hidden_units = Units(units1);
  mlp1.activation = activation;
  mlp1.dropout = config.mlp1_dropout();
  mlp1.batch_norm = config.mlp1_batch_norm();
  mlp1.name = "mlp1";
  MlpOptions mlp2 = mlp1;
  mlp2.hidden_units = Units(units2);
  mlp2.dropout = config.mlp2_dropout();
  mlp2.batch_norm = config.mlp2_batch_norm();
  mlp2.name = "mlp2";
  Node* x1 = AddMlp(g, feat1, mlp1);
  Node* x2 = AddMlp(g, feat2, mlp2);
  model->set_logits(g->Add<BilinearFusion>(x1, x2, heads, "fusion")->out());
  return absl::OkStatus();
}

}  // namespace

CTRPS_REGISTER_MODEL(finalmlp, ModelConfig::FINALMLP, BuildFinalMlp)

}  // namespace ctrps::nn
