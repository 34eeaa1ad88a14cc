// The shape the sequence models share: each behaviour sequence is pooled
// (mean, attention, sampling: the model's choice) into its field's emb slot,
// then the deep part (DeepMlpOptions) runs over the F fields.
#ifndef CTRPS_WORKER_NN_MODELS_SEQUENCE_MODEL_H_
#define CTRPS_WORKER_NN_MODELS_SEQUENCE_MODEL_H_

#include <cstddef>
#include <functional>
#include <vector>

#include "absl/status/status.h"
#include "common/proto/config.pb.h"
#include "worker/nn/layers/sequence/sequence_pooling.h"
#include "worker/nn/models/graph_model.h"

namespace ctrps::nn {

// Adds sequence i's pooling layer over its input node `seq` [B, max_len * D].
using PoolingFactory =
    std::function<SequencePooling*(size_t i, const SequenceSpec& spec, Node* seq)>;

// Adds the sequences' inputs, their poolings from `make_pool`, the pooled
// slots in place of the sequence fields and the MLP; sets the logits.
// InvalidArgument for a bad deep-part option.
absl::Status BuildPooledSequenceModel(const ModelConfig& config,
                                      const std::vector<SequenceSpec>& sequences,
                                      const PoolingFactory& make_pool, GraphModel* model);

// For the models that attend to a target: every sequence's target_field is a
// field in [0, num_fields) and not itself a sequence field. InvalidArgument
// naming the sequence otherwise.
absl::Status CheckSequenceTargets(const ModelConfig& config, int num_fields,
                                  const std::vector<SequenceSpec>& sequences);

}  // namespace ctrps::nn

#endif  // CTRPS_WORKER_NN_MODELS_SEQUENCE_MODEL_H_
