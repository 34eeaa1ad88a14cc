// The model zoo's registry: how each ModelConfig::Type is built.
//
// A model lives in its own folder, worker/nn/models/<name>/, with
//   <name>_model.cc       its builder, registered with CTRPS_REGISTER_MODEL
//   <name>_model_test.cc  its tests (gradient check, formula)
//   README.md             the paper, the formula, the reference confs
//                         (conf/*.pbtxt) and the command that trains them
// and optionally layers of its own (other .cc files, each with its
// *_test.cc) and <name>_job_test.sh, a whole training job run by ctest.
// Its traits (first-order part, sequences, outputs) are declared on its enum
// value in common/proto/config.proto and read with GetModelTraits()
// (common/model_tables.h): servers, export and serving need the traits but
// not the models. worker/nn/models/CMakeLists.txt finds the folders and
// generates the list RegisteredModels() returns, so adding a model is one
// folder and one enum line.
#ifndef CTRPS_WORKER_NN_MODELS_MODEL_REGISTRY_H_
#define CTRPS_WORKER_NN_MODELS_MODEL_REGISTRY_H_

#include <span>
#include <vector>

#include "absl/status/status.h"
#include "common/proto/config.pb.h"
#include "worker/nn/models/ctr_model.h"
#include "worker/nn/models/graph_model.h"

namespace ctrps::nn {

// Adds the model's layers to `model` (whose inputs exist: emb, linear iff
// the type's traits say needs_linear) and sets its logits. `sequences` is
// empty unless the traits say sequence; then it is non-empty, its fields are
// distinct, inside [0, num_fields) and have max_len > 0 (CreateModel checks
// that, and every field's declared range, before calling the builder).
// Returns InvalidArgument naming the config field for anything else wrong.
using ModelBuilder = absl::Status (*)(const ModelConfig& config,
                                      const std::vector<SequenceSpec>& sequences,
                                      GraphModel* model);

struct ModelRegistration {
  ModelConfig::Type type;
  ModelBuilder build;
};

// Every registered model, in folder-name order. Both functions are
// thread-safe and never fail.
std::span<const ModelRegistration* const> RegisteredModels();

// The registration of `type`; nullptr if no folder registers it.
const ModelRegistration* FindModelRegistration(ModelConfig::Type type);

}  // namespace ctrps::nn

// Used once, inside namespace ctrps::nn, in worker/nn/models/<folder>/<folder>_model.cc:
//   CTRPS_REGISTER_MODEL(deepfm, ModelConfig::DEEPFM, BuildDeepFm)
// It defines the function the generated list calls for that folder.
#define CTRPS_REGISTER_MODEL(folder, type, builder)                          \
  const ::ctrps::nn::ModelRegistration& RegisteredModel_##folder() {         \
    static const ::ctrps::nn::ModelRegistration registration{type, builder}; \
    return registration;                                                     \
  }

#endif  // CTRPS_WORKER_NN_MODELS_MODEL_REGISTRY_H_
