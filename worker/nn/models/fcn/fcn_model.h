// FCN's parts, shared by FCN and ECN.
#ifndef CTRPS_WORKER_NN_MODELS_FCN_FCN_MODEL_H_
#define CTRPS_WORKER_NN_MODELS_FCN_FCN_MODEL_H_

#include "absl/status/statusor.h"
#include "common/proto/config.pb.h"
#include "worker/nn/graph.h"
#include "worker/nn/models/graph_model.h"

namespace ctrps::nn {

// The embeddings split into config.fcn().num_heads() heads (HeadSplit).
// InvalidArgument (naming the fields) unless the embedding dim is a multiple
// of 2 * num_heads.
absl::StatusOr<Node*> AddFcnHeads(const ModelConfig& config, GraphModel* model);

// A cross network over `heads` (from AddFcnHeads) and its logit [B, 1], the
// mean over heads of a shared Linear(d, 1). exponential: ECN with
// num_deep_cross_layers and deep_net_dropout; else LCN with the shallow ones.
Node* AddCrossNetworkLogit(const ModelConfig& config, GraphModel* model, Node* heads,
                           bool exponential);

}  // namespace ctrps::nn

#endif  // CTRPS_WORKER_NN_MODELS_FCN_FCN_MODEL_H_
