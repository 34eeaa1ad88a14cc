// Scores samples with an export (worker/export.h) without a running PS:
// the exported config, dense weights and embedding tables, and the same
// feature assembly (worker/feature_assembler.h) and model code as training,
// so a sample's score equals the trainer's evaluation score for the same rows.
//
//   ASSIGN_OR_RETURN(auto predictor, Predictor::Load("/runs/x/export"));
//   ASSIGN_OR_RETURN(std::vector<float> p, predictor->PredictLines(lines));
//
// A key with a row in the export reads that row (f16 exports are widened to
// f32 at lookup). A key without one reads zeros when its table's
// missing_is_zero is set (admission, or rows dropped by the export's
// min_count), else its initial value (ps/sparse_optimizer.h InitializeRow),
// as training pulls it.
//
// Thread safety: after Load(), every method may be called from many threads
// at once. Each call borrows a model instance with its scratch buffers from a
// pool (one per concurrent caller, created on demand and kept).
#ifndef CTRPS_WORKER_PREDICTOR_H_
#define CTRPS_WORKER_PREDICTOR_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/proto/checkpoint.pb.h"
#include "common/proto/config.pb.h"
#include "worker/data/batch.h"
#include "worker/embedding_file.h"
#include "worker/feature_assembler.h"
#include "worker/nn/models/ctr_model.h"

namespace ctrps {

class Predictor {
 public:
  // Opens the export in `export_dir`: manifest.pbtxt, dense.bin and every
  // table's .emb files (memory-mapped). Errors: NotFound naming the file
  // (no manifest, a missing .emb file or dense.bin); DataLoss naming the file
  // when the export is corrupt or inconsistent (wrong magic, truncated file,
  // dims or row counts that disagree with the manifest, dense sizes that do
  // not fit the model); InvalidArgument / Unimplemented for a config the
  // predictor cannot run (e.g. sequence models).
  static absl::StatusOr<std::unique_ptr<Predictor>> Load(const std::string& export_dir);
  ~Predictor();
  Predictor(const Predictor&) = delete;
  Predictor& operator=(const Predictor&) = delete;

  // probs (resized to batch.size) = sigmoid(logit) of each sample, the model
  // in evaluation mode. `batch` must be shaped by the exported config's
  // DataConfig (as SampleParser makes it); labels are ignored.
  // InvalidArgument for a batch of another shape.
  absl::Status Predict(const Batch& batch, std::vector<float>* probs) const;

  // Parses data lines in the exported config's data format (for CSV,
  // lines[0] is the header and gets no score) and scores them: one
  // probability per data line. InvalidArgument naming the line (1-based
  // index into `lines`) for the first line that does not parse, e.g.
  // `line 3: expected 40 columns, got 39`.
  absl::StatusOr<std::vector<float>> PredictLines(const std::vector<std::string>& lines) const;

  const ExperimentConfig& config() const { return manifest_.config(); }
  const ExportManifest& manifest() const { return manifest_; }

 private:
  // One embedding table: its shard files and what a missing key reads.
  struct Table {
    std::string name;
    int dim = 0;
    bool missing_is_zero = false;
    TableConfig init;  // the table's config with dim = the export's dim
    std::vector<std::unique_ptr<EmbeddingFile>> files;
    void Lookup(uint64_t key, float* out) const;
  };
  struct Context;
  // Returns a context to the pool when it goes out of scope.
  class Lease;

  Predictor() = default;
  // A context with `model` (created here when null) holding the dense weights.
  absl::StatusOr<std::unique_ptr<Context>> NewContext(
      std::unique_ptr<nn::CtrModel> model = nullptr) const;
  absl::StatusOr<Lease> Acquire() const;
  void Release(std::unique_ptr<Context> context) const;
  absl::Status Score(Context& context, const Batch& batch, std::vector<float>* probs) const;

  ExportManifest manifest_;
  std::unique_ptr<FeatureAssembler> assembler_;  // copied into each context
  std::vector<Table> tables_;                    // in the assembler's table order
  std::vector<float> dense_values_;
  std::vector<float> dense_buffers_;

  mutable absl::Mutex mu_;
  mutable std::vector<std::unique_ptr<Context>> pool_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ctrps

#endif  // CTRPS_WORKER_PREDICTOR_H_
