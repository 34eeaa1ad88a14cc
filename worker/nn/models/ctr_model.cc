#include "worker/nn/models/ctr_model.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/field_ranges.h"
#include "common/model_tables.h"
#include "common/status.h"
#include "glog/logging.h"
#include "worker/nn/models/graph_model.h"
#include "worker/nn/models/model_registry.h"

namespace ctrps::nn {
namespace {

std::string SequenceModelNames() {
  std::vector<std::string> names;
  for (const ModelRegistration* r : RegisteredModels()) {
    if (GetModelTraits(r->type).sequence()) names.push_back(ModelConfig::Type_Name(r->type));
  }
  return absl::StrJoin(names, ", ");
}

// What every sequence model needs of its sequences; the builders check
// what is particular to them (a target field).
absl::Status CheckSequences(const ModelConfig& config, int num_fields,
                            const std::vector<SequenceSpec>& sequences) {
  const std::string type = ModelConfig::Type_Name(config.type());
  if (!GetModelTraits(config.type()).sequence()) {
    if (sequences.empty()) return absl::OkStatus();
    return absl::InvalidArgumentError(
        absl::StrCat("model.type ", type, " takes no sequence inputs (got ", sequences.size(),
                     "); the sequence models are ", SequenceModelNames()));
  }
  if (sequences.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model.type ", type, " needs at least one sequence input (a SEQUENCE feature)"));
  }
  std::vector<bool> is_sequence(num_fields, false);
  for (size_t i = 0; i < sequences.size(); ++i) {
    const SequenceSpec& s = sequences[i];
    if (s.field < 0 || s.field >= num_fields) {
      return absl::InvalidArgumentError(absl::StrCat("model: sequence ", i, " fills field ",
                                                     s.field, ", outside [0, ", num_fields, ")"));
    }
    if (is_sequence[s.field]) {
      return absl::InvalidArgumentError(absl::StrCat("model: sequence ", i, " fills field ",
                                                     s.field, ", as an earlier one does"));
    }
    is_sequence[s.field] = true;
    if (s.max_len <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("model: sequence ", i, " has max_len ", s.max_len, "; it must be > 0"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<CtrModel>> CreateModel(const ModelConfig& config, int num_fields,
                                                      int dim, uint64_t seed) {
  return CreateModel(config, num_fields, dim, seed, {});
}

absl::StatusOr<std::unique_ptr<CtrModel>> CreateModel(const ModelConfig& config, int num_fields,
                                                      int dim, uint64_t seed,
                                                      const std::vector<SequenceSpec>& sequences) {
  if (num_fields <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("model: the number of fields must be > 0, got ", num_fields));
  }
  if (dim <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("model: the embedding dim must be > 0, got ", dim));
  }
  const ModelRegistration* registration = FindModelRegistration(config.type());
  if (registration == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model.type ", ModelConfig::Type_Name(config.type()), " has no registered builder"));
  }
  RETURN_IF_ERROR(CheckFieldRanges(config, "model"));
  RETURN_IF_ERROR(CheckSequences(config, num_fields, sequences));
  const ModelTraits& traits = GetModelTraits(config.type());
  auto model = std::make_unique<GraphModel>(num_fields, dim, traits.needs_linear(), seed);
  RETURN_IF_ERROR(registration->build(config, sequences, model.get()));
  // A builder's own invariant, so not a status: every path ends in logits.
  CHECK(model->logits() != nullptr && model->logits()->width() == traits.num_outputs())
      << ModelConfig::Type_Name(config.type()) << ": the builder's logits do not match num_outputs";
  return std::unique_ptr<CtrModel>(std::move(model));
}

}  // namespace ctrps::nn
