// FGCNN (Liu et al., "Feature Generation by Convolutional Neural Network for
// Click-Through Rate Prediction", WWW 2019): convolutions along the field
// axis of the embedding matrix find local patterns, max-pooling keeps the
// strongest, and a recombination layer turns each layer's pooled map into
// new feature embeddings; the new features join the raw ones in IPNN:
//   x_0 = E (fields x dim, 1 channel)
//   x_i = MaxPool_p(act(BN(Conv_k(x_{i-1}))))          (along the fields)
//   n_i = act(W_i flatten(x_i) + b_i), cut into fields of dim
//   z   = [E, n_1, ..., n_L]                           (T fields)
//   logit = MLP([z, <z_a, z_b> for a < b])
#include <cstdint>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "worker/nn/layers/basic/concat.h"
#include "worker/nn/layers/basic/linear.h"
#include "worker/nn/layers/basic/select_fields.h"
#include "worker/nn/layers/blocks/mlp_block.h"
#include "worker/nn/layers/conv/field_conv.h"
#include "worker/nn/layers/conv/field_max_pool.h"
#include "worker/nn/layers/normalization/batch_norm.h"
#include "worker/nn/models/ipnn/inner_product.h"
#include "worker/nn/models/model_options.h"
#include "worker/nn/models/model_registry.h"

namespace ctrps::nn {
namespace {

absl::Status BuildFgcnn(const ModelConfig& config, const std::vector<SequenceSpec>& sequences,
                        GraphModel* model) {
  std::vector<int> channels = Units(config.conv_channels());
  std::vector<int> kernels = Units(config.conv_kernel_heights());
  std::vector<int> pools = Units(config.pooling_sizes());
  std::vector<int> recombined = Units(config.recombined_channels());
  if (channels.empty() && kernels.empty() && pools.empty() && recombined.empty()) {
    // FuxiCTR's defaults.
    channels = {14, 16, 18, 20};
    kernels = {7, 7, 7, 7};
    pools = {2, 2, 2, 2};
    recombined = {2, 2, 2, 2};
  }
  const int layers = static_cast<int>(channels.size());
  if (layers == 0 || static_cast<int>(kernels.size()) != layers ||
      static_cast<int>(pools.size()) != layers || static_cast<int>(recombined.size()) != layers) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model: FGCNN needs conv_channels, conv_kernel_heights, pooling_sizes and "
        "recombined_channels of the same length, got ",
        channels.size(), ", ", kernels.size(), ", ", pools.size(), ", ", recombined.size()));
  }
  for (int k : kernels) {
    if (k % 2 == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("model.conv_kernel_heights: ", k, " is even; kernels must be odd"));
    }
  }
  ASSIGN_OR_RETURN(Activation conv_act, ParseActivation(config.conv_activation()));
  ASSIGN_OR_RETURN(MlpOptions mlp, DeepMlpOptions(config));
  Graph* g = model->graph();
  const int num_fields = model->num_fields();
  const int64_t dim = model->dim();

  // Generation fields apart (their own tables), or the classifier's own.
  std::vector<bool> is_generation(num_fields, false);
  std::vector<int> generation;
  for (int f : config.generation_fields()) {
    if (f >= num_fields || is_generation[f]) {
      return absl::InvalidArgumentError(
          absl::StrCat("model.generation_fields: field ", f,
                       f >= num_fields ? absl::StrCat(" is not below the ", num_fields, " fields")
                                       : std::string(" is listed twice")));
    }
    is_generation[f] = true;
    generation.push_back(f);
  }
  std::vector<int> raw_fields;
  for (int f = 0; f < num_fields; ++f) {
    if (!is_generation[f]) raw_fields.push_back(f);
  }
  Node* raw = model->emb();
  Node* x = model->emb();
  int64_t height = num_fields;
  if (!generation.empty()) {
    if (raw_fields.empty()) {
      return absl::InvalidArgumentError(
          "model.generation_fields: no field is left for the classifier");
    }
    raw = g->Add<SelectFields>(model->emb(), dim, raw_fields)->out();
    x = g->Add<SelectFields>(model->emb(), dim, generation)->out();
    height = static_cast<int64_t>(generation.size());
  }

  std::vector<Node*> features = {raw};
  int64_t total_fields = static_cast<int64_t>(raw_fields.size());
  int64_t in_channels = 1;
  for (int i = 0; i < layers; ++i) {
    const std::string name = absl::StrCat("fgcnn.", i);
    const int64_t out_channels = channels[i];
    x = g->Add<FieldConv>(x, height, dim, in_channels, out_channels, kernels[i], name + ".conv")
            ->out();
    if (config.conv_batch_norm()) {
      x = g->Add<BatchNorm>(x, name + ".bn", 1e-5f, 0.1f, out_channels)->out();
    }
    x = AddActivation(g, x, conv_act, name + ".act");
    x = g->Add<FieldMaxPool>(x, height, dim * out_channels, pools[i])->out();
    height = FieldMaxPool::OutHeight(height, pools[i]);
    in_channels = out_channels;
    const int64_t new_fields = height * recombined[i];
    Node* r = g->Add<Linear>(x, new_fields * dim, true, name + ".recombine")->out();
    features.push_back(AddActivation(g, r, conv_act, name + ".recombine_act"));
    total_fields += new_fields;
  }
  Node* z = g->Add<Concat>(features)->out();
  Node* products = g->Add<InnerProduct>(z, total_fields, dim)->out();
  Node* input = g->Add<Concat>(std::vector<Node*>{z, products})->out();
  model->set_logits(AddMlp(g, input, mlp));
  return absl::OkStatus();
}

}  // namespace

CTRPS_REGISTER_MODEL(fgcnn, ModelConfig::FGCNN, BuildFgcnn)

}  // namespace ctrps::nn
