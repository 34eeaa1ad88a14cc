// SDIM: each sequence's slot = SimHash sampling of the history rows that
// share the target t's hash codes (sdim_num_hashes hyperplanes in groups of
// sdim_hash_bits; see sdim_sampling.h); then logit = MLP(flat emb) -> 1.
#include "absl/strings/str_cat.h"
#include "common/hash.h"
#include "common/status.h"
#include "worker/nn/layers/sequence/sdim_sampling.h"
#include "worker/nn/models/model_registry.h"
#include "worker/nn/models/sequence_model.h"

namespace ctrps::nn {
namespace {

constexpr uint64_t kSdimSeedSalt = 0x7364696dULL;

absl::Status BuildSdim(const ModelConfig& config, const std::vector<SequenceSpec>& sequences,
                       GraphModel* model) {
  RETURN_IF_ERROR(CheckSequenceTargets(config, model->num_fields(), sequences));
  const int num_hashes = config.sdim_num_hashes(), hash_bits = config.sdim_hash_bits();
  if (num_hashes % hash_bits != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("model.sdim_num_hashes must be a positive multiple of sdim_hash_bits (",
                     hash_bits, "), got ", num_hashes));
  }
  auto pool = [&](size_t i, const SequenceSpec& spec, Node* seq) -> SequencePooling* {
    const int64_t query_offset = static_cast<int64_t>(spec.target_field) * model->dim();
    return model->graph()->Add<SdimSampling>(
        seq, spec.max_len, model->emb(), query_offset, num_hashes, hash_bits,
        Mix64(model->seed() ^ kSdimSeedSalt ^ Mix64(i + 1)), absl::StrCat("sdim.", i));
  };
  return BuildPooledSequenceModel(config, sequences, pool, model);
}

}  // namespace

CTRPS_REGISTER_MODEL(sdim, ModelConfig::SDIM, BuildSdim)

}  // namespace ctrps::nn
