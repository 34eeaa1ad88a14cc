#include "worker/nn/layers/blocks/feature_selection.h"

#include "worker/nn/layers/activation/sigmoid.h"
#include "worker/nn/layers/basic/learned_vector.h"
#include "worker/nn/layers/blocks/feature_gate.h"
#include "worker/nn/layers/blocks/mlp_block.h"

namespace ctrps::nn {

Node* AddFeatureSelection(Graph* graph, Node* in, Node* context, int64_t context_width,
                          const std::vector<int>& hidden_units, const std::string& name) {
  if (context == nullptr) {
    context = graph->Add<LearnedVector>(context_width, Initializer::Zeros(), name + ".ctx")->out();
  }
  MlpOptions gate;
  gate.hidden_units = hidden_units;
  gate.activation = Activation::kRelu;
  gate.output_dim = static_cast<int>(in->width());
  gate.output_activation = Activation::kNone;
  gate.name = name + ".gate";
  Node* logits = AddMlp(graph, context, gate);
  Node* g = graph->Add<Sigmoid>(logits, 2.0f)->out();
  return graph->Add<FeatureGate>(in, g)->out();
}

}  // namespace ctrps::nn
