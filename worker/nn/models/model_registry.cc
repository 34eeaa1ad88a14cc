#include "worker/nn/models/model_registry.h"

namespace ctrps::nn {

// RegisteredModels() is defined in the generated model_list.cc.

const ModelRegistration* FindModelRegistration(ModelConfig::Type type) {
  for (const ModelRegistration* r : RegisteredModels()) {
    if (r->type == type) return r;
  }
  return nullptr;
}

}  // namespace ctrps::nn
