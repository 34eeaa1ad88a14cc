// How a batch's keys and pulled rows become a model's inputs, and the model's
// input gradients become per-key gradients. Shared by training and serving so
// that both compute exactly the same thing.
//
// A field's input is its row's first `dim` values (pooled for a multi-valued
// field: sum or mean; scaled by the value for a numeric field); models with a
// first-order term also read the row's last column (see common/model_tables.h).
//
// For the sequence models (traits: sequence) a SEQUENCE feature is kept as
// a sequence instead: Assemble() leaves its emb slot zero and fills a
// [B, max_len, dim] buffer of its rows (oldest first, as the reader keeps
// them) and its lengths, which sequences() lists for nn::ModelInput; Scatter()
// takes the matching d_seq_emb. For other models it is pooled like a
// MULTI_VALUED feature.
//
// Not thread-safe (scratch buffers); one per thread.
#ifndef CTRPS_WORKER_FEATURE_ASSEMBLER_H_
#define CTRPS_WORKER_FEATURE_ASSEMBLER_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/proto/config.pb.h"
#include "worker/data/batch.h"
#include "worker/data/key_dedup.h"
#include "worker/nn/models/ctr_model.h"

namespace ctrps {

class FeatureAssembler {
 public:
  // InvalidArgument when the config has no features, the fields' tables
  // differ in dim (the models need one dim), or a kept sequence names a
  // target that is missing or is itself a sequence.
  static absl::StatusOr<FeatureAssembler> Create(const ExperimentConfig& config);

  int num_fields() const { return static_cast<int>(fields_.size()); }
  int dim() const { return dim_; }
  bool linear() const { return linear_; }
  // Tables in the order KeyDedup lists them, and their row widths on the servers.
  const std::vector<std::string>& table_names() const { return table_names_; }
  const std::vector<int>& server_dims() const { return server_dims_; }

  // The sequences kept as sequences, in config order (empty unless the
  // model's traits say sequence): field = the feature's index, target_field =
  // the index of the feature its FeatureConfig.target names (-1 if unset),
  // max_len = FeatureConfig.max_len. Pass them to nn::CreateModel.
  const std::vector<nn::SequenceSpec>& sequence_specs() const { return sequence_specs_; }

  // emb: [B, F, dim]; linear: [B, F] (only when linear()). rows[t] holds the
  // unique keys' rows of dedup table t (unique_keys.size() x server_dims()[t]).
  // Also fills the buffers behind sequences().
  void Assemble(const Batch& batch, const KeyDedup& dedup, const std::vector<const float*>& rows,
                float* emb, float* linear);

  // After Assemble(): one nn::SequenceInput per sequence_specs() entry, for
  // ModelInput.sequences. The buffers ([B, max_len, dim] rows, zero past each
  // length; lengths [B]) belong to the assembler and stay valid until the
  // next Assemble().
  const std::vector<nn::SequenceInput>& sequences() const { return sequences_; }

  // The reverse: grads[t] (resized and overwritten) = sum over the key's
  // occurrences of scale * d(loss)/d(row), for every unique key of table t.
  // d_seq_emb: one [B, max_len, dim] per sequence_specs() entry (the model's
  // ModelInputGrad.d_seq_emb); a sequence's rows add to the same unique keys
  // as any other field of its table (e.g. its target).
  void Scatter(const Batch& batch, const KeyDedup& dedup, const float* d_emb, const float* d_linear,
               const std::vector<float*>& d_seq_emb, float scale,
               std::vector<std::vector<float>>* grads);
  // For configs without kept sequences.
  void Scatter(const Batch& batch, const KeyDedup& dedup, const float* d_emb, const float* d_linear,
               float scale, std::vector<std::vector<float>>* grads) {
    Scatter(batch, dedup, d_emb, d_linear, {}, scale, grads);
  }

 private:
  struct Field {
    int table = 0;  // index into the dedup's tables
    int slot = 0;   // position of the field within that table's fields
    bool numeric = false;
    bool mean = false;
    int sequence = -1;  // index into sequence_specs_ when kept as a sequence
  };
  FeatureAssembler() = default;
  // Multiplier of sample b's occurrences of field `f`.
  float Scale(const Field& f, const FieldBatch& fb, int b) const;
  // Fills sequence i's buffers from scratch_ (fb's rows, server width sd).
  void AssembleSequence(int i, const FieldBatch& fb, int sd);

  std::vector<Field> fields_;
  std::vector<std::string> table_names_;
  std::vector<int> server_dims_;
  int dim_ = 0;
  bool linear_ = false;
  std::vector<float> scratch_;
  std::vector<nn::SequenceSpec> sequence_specs_;
  std::vector<nn::SequenceInput> sequences_;
  std::vector<std::vector<float>> seq_emb_;        // per sequence: [B, max_len, dim]
  std::vector<std::vector<int32_t>> seq_lengths_;  // per sequence: [B]
};

}  // namespace ctrps

#endif  // CTRPS_WORKER_FEATURE_ASSEMBLER_H_
