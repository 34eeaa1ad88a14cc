// Config fields shared by several models, turned into layer options. Field
// ranges are checked by CreateModel before any builder runs (the `(range)`
// options in common/proto/config.proto); these report what a range cannot
// say (an unknown activation name).
#ifndef CTRPS_WORKER_NN_MODELS_MODEL_OPTIONS_H_
#define CTRPS_WORKER_NN_MODELS_MODEL_OPTIONS_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "common/proto/config.pb.h"
#include "google/protobuf/repeated_field.h"
#include "worker/nn/layers/blocks/mlp_block.h"

namespace ctrps::nn {

std::vector<int> Units(const google::protobuf::RepeatedField<int32_t>& units);

// The deep part (hidden_units, activation, dropout, batch_norm) named "dnn",
// with a 1-wide output layer. InvalidArgument for an unknown activation.
absl::StatusOr<MlpOptions> DeepMlpOptions(const ModelConfig& config);

}  // namespace ctrps::nn

#endif  // CTRPS_WORKER_NN_MODELS_MODEL_OPTIONS_H_
