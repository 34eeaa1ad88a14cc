// FinalMLP's feature selection (Mao et al., AAAI 2023; FuxiCTR's
// FeatureSelection), one gate per stream:
//   gate = 2 * sigmoid(MLP(context)),   out = in * gate (elementwise)
// MLP = hidden_units with ReLU, then Linear to in's width. With no context
// fields the context is a learned vector of context_width (FuxiCTR's
// fs*_ctx_bias, zeros at start); it is the same for every sample, so the
// gate is computed once per batch and broadcast.
#ifndef CTRPS_WORKER_NN_LAYERS_BLOCKS_FEATURE_SELECTION_H_
#define CTRPS_WORKER_NN_LAYERS_BLOCKS_FEATURE_SELECTION_H_

#include <cstdint>
#include <string>
#include <vector>

#include "worker/nn/graph.h"

namespace ctrps::nn {

// `context` null: a learned vector of `context_width`; else `context` (its
// width is used). Returns the gated node.
Node* AddFeatureSelection(Graph* graph, Node* in, Node* context, int64_t context_width,
                          const std::vector<int>& hidden_units, const std::string& name);

}  // namespace ctrps::nn

#endif  // CTRPS_WORKER_NN_LAYERS_BLOCKS_FEATURE_SELECTION_H_
