// The training loop of one worker: read, de-duplicate keys, pull embeddings
// (the next batch's pulls in flight while this one computes), run the dense
// tower, push sparse gradients asynchronously, average dense gradients over
// the workers with MPI_Allreduce, evaluate every epoch with early stopping,
// and test the best epoch.
//
// Every worker runs a Trainer with the same config; worker 0 (the chief)
// prints progress and writes the run directory (config.pbtxt,
// metrics.jsonl, summary.json).
#ifndef CTRPS_WORKER_TRAINER_H_
#define CTRPS_WORKER_TRAINER_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/proto/checkpoint.pb.h"
#include "common/proto/config.pb.h"
#include "mpi.h"
#include "worker/data/batch.h"
#include "worker/data/key_dedup.h"
#include "worker/data/reader.h"
#include "worker/feature_assembler.h"
#include "worker/nn/dense_optimizer.h"
#include "worker/nn/models/ctr_model.h"
#include "worker/ps_client.h"

namespace ctrps {

struct TrainerOptions {
  ExperimentConfig config;  // loaded and validated
  std::string run_dir;      // the chief writes here; created if missing
  int worker_index = 0;
  int num_workers = 1;
  MPI_Comm comm = MPI_COMM_NULL;  // the workers' communicator; null when num_workers == 1
  PsClient* client = nullptr;     // not owned
  bool quiet = false;             // no progress lines (tests)
  // Continue from the newest complete checkpoint (or from resume_from).
  bool resume = false;
  std::string resume_from;
};

struct EvalResult {
  double auc = 0;
  double logloss = 0;
  int64_t samples = 0;
};

struct TrainSummary {
  int epochs_run = 0;
  int best_epoch = 0;
  int64_t steps = 0;
  int64_t samples_trained = 0;  // since the job began (resumes included)
  EvalResult best_valid;
  EvalResult test;  // of the best epoch
  bool has_test = false;
  double train_samples_per_sec = 0;
  double seconds = 0;
};

class Trainer {
 public:
  // InvalidArgument for a config the trainer cannot run (no features, tables
  // of different dims feeding one model, an unsupported model).
  static absl::StatusOr<std::unique_ptr<Trainer>> Create(TrainerOptions options);
  ~Trainer();

  // Trains, evaluates and tests as configured. Collective over the workers.
  absl::StatusOr<TrainSummary> Run();

  // Evaluates one split (all workers take part; every worker gets the result).
  // With scores_out, also writes every score (one per line; single worker).
  absl::StatusOr<EvalResult> Evaluate(Split split, const std::string& scores_out = "");

 private:
  struct Slot;

  explicit Trainer(TrainerOptions options);
  absl::Status Init();
  // Reads the next item into `slot` and issues its pulls; a training item
  // is to be trained at global step `step`.
  absl::Status Fill(Reader& reader, Slot& slot, bool training, int64_t step = 0);
  // The step tags of this worker's training requests of `step`
  // (train.sparse_sync); a push's tag has no wait_step.
  StepTag PullTag(int64_t step) const;
  StepTag PushTag() const;
  // A worker past its end of epoch pushes nothing but, under SYNC and
  // BOUNDED, tells every server that it has no gradients for this step.
  void PushNothing();
  absl::Status WaitIdlePushes();
  absl::Status WaitPulls(Slot& slot);
  // Field embeddings and first-order weights of the slot's batch.
  void Assemble(const Slot& slot);
  // Forward, backward, push; returns the batch's mean loss.
  absl::StatusOr<double> TrainStep(Slot& slot);
  // Averages dense gradients over workers (weighted by samples) and steps the
  // optimizer. Returns the total samples of this step over all workers.
  // *checkpoint_due says whether the job checkpoints after this step.
  absl::StatusOr<int64_t> DenseStep(int local_samples, bool* checkpoint_due);
  void AverageBuffers();
  // Collective: drains pushes, has every server checkpoint its tables, and
  // the chief writes dense state, reading positions and the manifest last.
  absl::Status SaveCheckpoint();
  // Collective: picks and validates the checkpoint, loads the servers, the
  // dense state and this worker's reading position.
  absl::Status Restore(ReaderOptions* reader_options);
  // The checkpoint to resume from (chief only), or why there is none.
  absl::StatusOr<std::string> PickCheckpoint();
  absl::Status ValidateCheckpoint(const std::string& dir, CheckpointManifest* manifest);
  // Status of the chief, seen by every worker.
  absl::Status AgreeOnStatus(const absl::Status& chief_status);
  absl::Status Log(const std::string& json_line);
  double MonitorValue(const EvalResult& r) const;

  // The parts of Run(), in order.
  struct EpochStats {
    int64_t samples = 0;  // over all workers
    int64_t steps = 0;
    double seconds = 0;
  };
  // Chief: counts the training lines and prints the job's first line.
  // Returns the steps per epoch (for the progress lines' ETA).
  int64_t PrintJobStart(const ReaderOptions& reader_options);
  // One epoch of training steps through the pull pipeline, with progress
  // lines and the checkpoints that fall due; returns once every worker is at
  // its end of epoch (pushes drained) or, setting *stop, at train.max_steps.
  absl::Status TrainEpoch(int epoch, Reader& reader, int64_t steps_per_epoch, EpochStats* stats,
                          bool* stop);
  // Evaluates the validation split and logs it; a new best is tested (with
  // has_test) and kept in summary_, otherwise OnPlateau decides *stop.
  absl::Status ValidateEpoch(int epoch, const EpochStats& stats, bool has_test, bool* stop);
  // An epoch without improvement: learning rates / plateau_lr_factor, and
  // true (stop) once `patience` such epochs have passed.
  bool OnPlateau(int epoch);
  // Chief: exports the best epoch's checkpoint (else the last) for serving.
  absl::Status ExportBest();
  // The test line of metrics.jsonl and, on the chief, summary.json.
  absl::Status WriteSummary(const TrainSummary& summary);
  void PrintSummary(const TrainSummary& summary) const;
  // One line of the servers' table statistics: rows in memory and on disk,
  // and what the spill logs read and wrote.
  void PrintServerSummary() const;

  TrainerOptions options_;
  absl::Status ComputeNumericStats();  // fills options_.config's FeatureConfig.stats
  const ExperimentConfig& config_;
  std::optional<FeatureAssembler> assembler_;
  int local_batch_ = 0;
  std::unique_ptr<nn::CtrModel> model_;
  std::unique_ptr<nn::DenseOptimizer> optimizer_;
  float lr_scale_ = 1.0f;
  int64_t global_step_ = 0;
  TrainConfig::SparseSync sparse_sync_ = TrainConfig::ASYNC;
  int64_t first_step_ = 0;             // where this run of the workers started
  std::vector<PsFuture> idle_pushes_;  // PushNothing's, until drained
  int64_t samples_trained_ = 0;        // since the job began, over all workers
  // Where training state stands, for checkpoints.
  int epochs_done_ = 0;
  ReadPosition last_position_;  // after the last batch this worker trained on
  double best_monitor_ = -1e300;
  int bad_epochs_ = 0;
  TrainSummary summary_;
  std::string checkpoint_root_;
  std::string last_checkpoint_;
  std::string best_checkpoint_;  // taken at the end of the best epoch; never pruned
  double last_checkpoint_time_ = 0;

  std::vector<std::unique_ptr<Slot>> slots_;
  // Model inputs and gradients, reused every step.
  std::vector<float> emb_, linear_, d_emb_, d_linear_, logits_, d_logits_, probs_;
  std::vector<const float*> row_ptrs_;
  std::vector<std::vector<float>> d_seq_;  // per sequence: [B, max_len, dim]
  std::vector<float*> d_seq_ptrs_;
  std::vector<float> reduce_buffer_;
  // Key occurrences and unique keys over all tables, summed over training
  // steps (reported once at the end).
  int64_t keys_before_dedup_ = 0;
  int64_t keys_after_dedup_ = 0;
  int64_t dedup_steps_ = 0;
};

}  // namespace ctrps

#endif  // CTRPS_WORKER_TRAINER_H_
