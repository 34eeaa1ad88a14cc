// AutoInt's interacting layers, shared by AUTOINT and AUTOINT_PLUS.
#ifndef CTRPS_WORKER_NN_MODELS_AUTOINT_AUTOINT_MODEL_H_
#define CTRPS_WORKER_NN_MODELS_AUTOINT_AUTOINT_MODEL_H_

#include "absl/status/statusor.h"
#include "common/proto/config.pb.h"
#include "worker/nn/graph.h"
#include "worker/nn/models/graph_model.h"

namespace ctrps::nn {

// Adds config.autoint().attention_layers MultiHeadSelfAttention layers over
// model->emb() and the Linear(F * attention_dim, 1) on their output; returns
// that logit node [B, 1]. InvalidArgument (naming the field) when
// attention_dim is not a multiple of num_heads.
absl::StatusOr<Node*> AddAutoIntLogit(const ModelConfig& config, GraphModel* model);

}  // namespace ctrps::nn

#endif  // CTRPS_WORKER_NN_MODELS_AUTOINT_AUTOINT_MODEL_H_
