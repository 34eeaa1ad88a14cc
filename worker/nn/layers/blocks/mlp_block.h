// MLP blocks as FuxiCTR's MLP_Block builds them: for each hidden layer
//   Linear -> [BatchNorm] -> activation -> [Dropout, when rate > 0]
// then an optional output Linear and output activation.
#ifndef CTRPS_WORKER_NN_LAYERS_BLOCKS_MLP_BLOCK_H_
#define CTRPS_WORKER_NN_LAYERS_BLOCKS_MLP_BLOCK_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/nn/graph.h"

namespace ctrps::nn {

enum class Activation { kNone, kRelu, kPrelu, kDice, kSigmoid, kTanh };

// "relu", "prelu", "dice", "sigmoid", "tanh" (any case); InvalidArgument otherwise.
absl::StatusOr<Activation> ParseActivation(const std::string& name);

// Appends `activation` after `in` and returns its output (`in` for kNone).
Node* AddActivation(Graph* graph, Node* in, Activation activation, const std::string& name);

struct MlpOptions {
  std::vector<int> hidden_units;
  Activation activation = Activation::kRelu;
  float dropout = 0.0f;  // in [0, 1)
  bool batch_norm = false;
  int output_dim = 0;  // > 0: a last Linear(hidden_units.back(), output_dim)
  Activation output_activation = Activation::kNone;
  std::string name = "mlp";
};

// Appends the block and returns its last node (`in` when it has no layers).
// Units and output_dim must be > 0 where given (callers validate configs).
Node* AddMlp(Graph* graph, Node* in, const MlpOptions& options);

}  // namespace ctrps::nn

#endif  // CTRPS_WORKER_NN_LAYERS_BLOCKS_MLP_BLOCK_H_
