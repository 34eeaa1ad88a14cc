#include "worker/nn/layers/blocks/mlp_block.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "worker/nn/layers/activation/dice.h"
#include "worker/nn/layers/activation/prelu.h"
#include "worker/nn/layers/activation/relu.h"
#include "worker/nn/layers/activation/sigmoid.h"
#include "worker/nn/layers/activation/tanh.h"
#include "worker/nn/layers/basic/dropout.h"
#include "worker/nn/layers/basic/linear.h"
#include "worker/nn/layers/normalization/batch_norm.h"

namespace ctrps::nn {

absl::StatusOr<Activation> ParseActivation(const std::string& name) {
  const std::string lower = absl::AsciiStrToLower(name);
  if (lower == "relu") return Activation::kRelu;
  if (lower == "prelu") return Activation::kPrelu;
  if (lower == "dice") return Activation::kDice;
  if (lower == "sigmoid") return Activation::kSigmoid;
  if (lower == "tanh") return Activation::kTanh;
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown activation \"", name, "\"; expected relu, prelu, dice, sigmoid or tanh"));
}

Node* AddActivation(Graph* graph, Node* in, Activation activation, const std::string& name) {
  switch (activation) {
    case Activation::kNone:
      return in;
    case Activation::kRelu:
      return graph->Add<Relu>(in)->out();
    case Activation::kPrelu:
      return graph->Add<Prelu>(in, name)->out();
    case Activation::kDice:
      return graph->Add<Dice>(in, name)->out();
    case Activation::kSigmoid:
      return graph->Add<Sigmoid>(in)->out();
    case Activation::kTanh:
      return graph->Add<Tanh>(in)->out();
  }
  return in;
}

Node* AddMlp(Graph* graph, Node* in, const MlpOptions& options) {
  Node* x = in;
  for (size_t i = 0; i < options.hidden_units.size(); ++i) {
    const std::string prefix = absl::StrCat(options.name, ".", i);
    x = graph->Add<Linear>(x, options.hidden_units[i], true, prefix + ".linear")->out();
    if (options.batch_norm) x = graph->Add<BatchNorm>(x, prefix + ".bn")->out();
    x = AddActivation(graph, x, options.activation, prefix + ".act");
    if (options.dropout > 0.0f) x = graph->Add<Dropout>(x, options.dropout)->out();
  }
  if (options.output_dim > 0) {
    x = graph->Add<Linear>(x, options.output_dim, true, options.name + ".out")->out();
    x = AddActivation(graph, x, options.output_activation, options.name + ".out_act");
  }
  return x;
}

}  // namespace ctrps::nn
