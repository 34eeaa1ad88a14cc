// How a batch's keys and pulled rows become a model's inputs, and the model's
// input gradients become per-key gradients. Shared by training and serving so
// that both compute exactly the same thing.
//
// A field's input is its row's first `dim` values (pooled for a multi-valued
// field: sum or mean; scaled by the value for a numeric field); models with a
// first-order term also read the row's last column (see common/model_tables.h).
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

namespace ctrps {

class FeatureAssembler {
 public:
  // InvalidArgument when the config has no features or the fields' tables
  // differ in dim (the models need one dim).
  static absl::StatusOr<FeatureAssembler> Create(const ExperimentConfig& config);

  int num_fields() const { return static_cast<int>(fields_.size()); }
  int dim() const { return dim_; }
  bool linear() const { return linear_; }
  // Tables in the order KeyDedup lists them, and their row widths on the servers.
  const std::vector<std::string>& table_names() const { return table_names_; }
  const std::vector<int>& server_dims() const { return server_dims_; }

  // emb: [B, F, dim]; linear: [B, F] (only when linear()). rows[t] holds the
  // unique keys' rows of dedup table t (unique_keys.size() x server_dims()[t]).
  void Assemble(const Batch& batch, const KeyDedup& dedup, const std::vector<const float*>& rows,
                float* emb, float* linear);

  // The reverse: grads[t] (resized and overwritten) = sum over the key's
  // occurrences of scale * d(loss)/d(row), for every unique key of table t.
  void Scatter(const Batch& batch, const KeyDedup& dedup, const float* d_emb, const float* d_linear,
               float scale, std::vector<std::vector<float>>* grads);

 private:
  struct Field {
    int table = 0;  // index into the dedup's tables
    int slot = 0;   // position of the field within that table's fields
    bool numeric = false;
    bool mean = false;
  };
  FeatureAssembler() = default;
  // Multiplier of sample b's occurrences of field `f`.
  float Scale(const Field& f, const FieldBatch& fb, int b) const;

  std::vector<Field> fields_;
  std::vector<std::string> table_names_;
  std::vector<int> server_dims_;
  int dim_ = 0;
  bool linear_ = false;
  std::vector<float> scratch_;
};

}  // namespace ctrps

#endif  // CTRPS_WORKER_FEATURE_ASSEMBLER_H_
