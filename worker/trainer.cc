#include "worker/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/all_finite.h"
#include "common/checkpoint_manifest.h"
#include "common/config.h"
#include "common/model_tables.h"
#include "common/status.h"
#include "ps/sparse_optimizer.h"
#include "worker/data/line_reader.h"
#include "worker/data/sample_parser.h"
#include "worker/export.h"
#include "worker/nn/bce_loss.h"
#include "worker/nn/metrics.h"

namespace ctrps {
namespace {

using Clock = std::chrono::steady_clock;

double NowSeconds() {
  return std::chrono::duration<double>(Clock::now().time_since_epoch()).count();
}

constexpr absl::Duration kReaderWait = absl::Seconds(30);

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

std::string FormatEta(double seconds) {
  if (!(seconds >= 0) || seconds > 1e7) return "?";
  int s = static_cast<int>(seconds);
  return absl::StrFormat("%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60);
}

// Data lines in the files (headers excluded for CSV), for progress and ETA.
int64_t CountLines(const std::vector<std::string>& files, bool csv_header) {
  int64_t lines = 0;
  for (const std::string& f : files) {
    auto reader = LineReader::Open(f, 1 << 20);  // decompresses gzip / zstd
    if (!reader.ok()) continue;
    (void)(*reader)->SkipTo(std::numeric_limits<int64_t>::max());
    lines += std::max<int64_t>(0, (*reader)->lines_read() - (csv_header ? 1 : 0));
  }
  return lines;
}

// Every train, valid and test file opens for reading. The errno's code
// (NotFound, PermissionDenied) naming the split and the file.
absl::Status CheckDataFiles(const ExperimentConfig& config) {
  for (Split split : {Split::kTrain, Split::kValid, Split::kTest}) {
    const auto& listed = split == Split::kTrain   ? config.data().train()
                         : split == Split::kValid ? config.data().valid()
                                                  : config.data().test();
    if (listed.empty()) continue;
    ASSIGN_OR_RETURN(ReaderOptions ro, MakeReaderOptions(config, split, 0, 1));
    const char* name = split == Split::kTrain ? "train" : split == Split::kValid ? "valid" : "test";
    for (const std::string& f : ro.files) {
      std::FILE* in = std::fopen(f.c_str(), "rb");
      if (in == nullptr) return ErrnoError(f, absl::StrCat("data.", name, " file: cannot open"));
      std::fclose(in);
    }
  }
  return absl::OkStatus();
}

}  // namespace

struct Trainer::Slot {
  ReadEvent event = ReadEvent::kEndOfData;
  Batch batch;
  std::unique_ptr<KeyDedup> dedup;
  std::vector<std::vector<float>> rows;   // per table: unique keys x server dim
  std::vector<std::vector<float>> grads;  // per table: unique keys x server dim
  std::vector<std::vector<uint32_t>> counts;
  std::vector<PsFuture> pulls;
  std::vector<PsFuture> pushes;

  absl::Status WaitPushes() {
    absl::Status first;
    for (PsFuture& f : pushes) {
      if (f.valid()) {
        absl::Status s = f.Wait();
        if (first.ok() && !s.ok()) first = s;
      }
    }
    pushes.clear();
    return first;
  }
  // Waits for everything in flight (pulls write into `rows`).
  void Drain() {
    for (PsFuture& f : pulls) {
      if (f.valid()) (void)f.Wait();
    }
    (void)WaitPushes();
  }
};

Trainer::Trainer(TrainerOptions options) : options_(std::move(options)), config_(options_.config) {}

Trainer::~Trainer() {
  for (auto& s : slots_) s->Drain();
}

absl::StatusOr<std::unique_ptr<Trainer>> Trainer::Create(TrainerOptions options) {
  if (options.client == nullptr) return absl::InvalidArgumentError("trainer needs a PS client");
  if (options.num_workers > 1 && options.comm == MPI_COMM_NULL) {
    return absl::InvalidArgumentError("several workers need an MPI communicator");
  }
  std::unique_ptr<Trainer> t(new Trainer(std::move(options)));
  RETURN_IF_ERROR(t->Init());
  return t;
}

absl::Status Trainer::ComputeNumericStats() {
  ASSIGN_OR_RETURN(
      ReaderOptions ro,
      MakeReaderOptions(config_, Split::kTrain, options_.worker_index, options_.num_workers));
  const auto start = std::chrono::steady_clock::now();
  ASSIGN_OR_RETURN(std::vector<NumericMoments> moments,
                   GatherNumericMoments(config_.data(), std::move(ro)));
  if (options_.num_workers > 1) {
    const int n = static_cast<int>(moments.size());
    std::vector<double> sums(3 * n), mins(n), maxs(n);
    for (int i = 0; i < n; ++i) {
      const NumericMoments& m = moments[i];
      sums[3 * i] = static_cast<double>(m.count);
      sums[3 * i + 1] = m.sum;
      sums[3 * i + 2] = m.sum_squares;
      mins[i] = m.count > 0 ? m.min : std::numeric_limits<double>::infinity();
      maxs[i] = m.count > 0 ? m.max : -std::numeric_limits<double>::infinity();
    }
    MPI_Allreduce(MPI_IN_PLACE, sums.data(), 3 * n, MPI_DOUBLE, MPI_SUM, options_.comm);
    MPI_Allreduce(MPI_IN_PLACE, mins.data(), n, MPI_DOUBLE, MPI_MIN, options_.comm);
    MPI_Allreduce(MPI_IN_PLACE, maxs.data(), n, MPI_DOUBLE, MPI_MAX, options_.comm);
    for (int i = 0; i < n; ++i) {
      moments[i] = NumericMoments{static_cast<int64_t>(sums[3 * i]), sums[3 * i + 1],
                                  sums[3 * i + 2], mins[i], maxs[i]};
    }
  }
  RETURN_IF_ERROR(SetNumericStats(moments, options_.config.mutable_data()));
  if (options_.worker_index == 0) {
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    for (const FeatureConfig& f : config_.data().feature()) {
      if (!f.has_stats()) continue;
      std::printf(
          "[data] %s: %s scaling from %lld training values: mean %.6g, stddev %.6g, "
          "min %.6g, max %.6g\n",
          f.name().c_str(), FeatureConfig::Scaling_Name(f.scaling()).c_str(),
          static_cast<long long>(f.stats().count()), f.stats().mean(), f.stats().stddev(),
          f.stats().min(), f.stats().max());
    }
    std::printf("[data] numeric statistics in %.1f s\n", seconds);
    std::fflush(stdout);
  }
  return absl::OkStatus();
}

absl::Status Trainer::Init() {
  // Every file the job will read is there before anything reads one (the
  // numeric statistics below read the train files): a missing test file
  // found after hours of training costs the run.
  RETURN_IF_ERROR(CheckDataFiles(config_));
  // Scaled numeric features need the training data's statistics before any
  // parser is made; they become part of the config (run dir, checkpoints,
  // export), so serving scales as training did.
  if (SampleParser::NeedsNumericStats(config_.data())) RETURN_IF_ERROR(ComputeNumericStats());
  const DataConfig& data = config_.data();
  ASSIGN_OR_RETURN(assembler_, FeatureAssembler::Create(config_));
  const int W = options_.num_workers;
  local_batch_ = (config_.train().batch_size() + W - 1) / W;
  sparse_sync_ = EffectiveSparseSync(config_.train());
  if (assembler_->sequence_specs().empty()) {
    ASSIGN_OR_RETURN(model_, nn::CreateModel(config_.model(), assembler_->num_fields(),
                                             assembler_->dim(), config_.train().seed()));
  } else {
    ASSIGN_OR_RETURN(model_,
                     nn::CreateModel(config_.model(), assembler_->num_fields(), assembler_->dim(),
                                     config_.train().seed(), assembler_->sequence_specs()));
  }
  model_->SetDropoutSeed(config_.train().seed() * 1000003 + options_.worker_index + 1);
  ASSIGN_OR_RETURN(optimizer_, nn::DenseOptimizer::Create(config_.train().dense_optimizer(),
                                                          model_->params().values().size()));
  // prefetch + 1 batches are filled (the one computing and those whose pulls
  // are in flight) and one more slot holds the batch whose push is still in
  // flight, so refilling a slot never waits for the push just issued.
  const int depth = std::max(1, config_.train().prefetch() + 1) + 1;
  for (int i = 0; i < depth; ++i) {
    auto slot = std::make_unique<Slot>();
    slot->dedup = std::make_unique<KeyDedup>(data);
    size_t n = assembler_->table_names().size();
    slot->rows.resize(n);
    slot->grads.resize(n);
    slot->counts.resize(n);
    slots_.push_back(std::move(slot));
  }
  checkpoint_root_ = config_.checkpoint().dir();
  if (checkpoint_root_.empty())
    checkpoint_root_ =
        absl::StrCat(options_.run_dir.empty() ? "." : options_.run_dir, "/checkpoints");
  if (options_.worker_index == 0 && !options_.run_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(options_.run_dir, ec);
    if (ec) return ErrnoError(options_.run_dir, "cannot create run directory", ec.value());
    std::ofstream(options_.run_dir + "/config.pbtxt") << ConfigToText(config_);
    std::ofstream(options_.run_dir + "/metrics.jsonl", std::ios::trunc);
  }
  return absl::OkStatus();
}

StepTag Trainer::PushTag() const {
  StepTag tag;
  if (sparse_sync_ == TrainConfig::ASYNC) return tag;
  tag.worker = options_.worker_index;
  tag.first_step = static_cast<uint64_t>(first_step_);
  return tag;
}

StepTag Trainer::PullTag(int64_t step) const {
  StepTag tag = PushTag();
  if (tag.worker < 0) return tag;
  // SYNC: every push of step - 1; BOUNDED: of step - 1 - max_staleness.
  const int64_t lag = sparse_sync_ == TrainConfig::SYNC ? 0 : config_.train().max_staleness();
  const int64_t wait = step - 1 - lag;
  if (wait >= first_step_) tag.wait_step = static_cast<uint64_t>(wait);
  return tag;
}

void Trainer::PushNothing() {
  if (sparse_sync_ == TrainConfig::ASYNC) return;
  const auto& names = assembler_->table_names();
  for (size_t t = 0; t < names.size(); ++t) {
    idle_pushes_.push_back(options_.client->Push(names[t], {}, assembler_->server_dims()[t],
                                                 nullptr, nullptr, global_step_, lr_scale_, 1.0f,
                                                 PushTag()));
  }
}

absl::Status Trainer::WaitIdlePushes() {
  absl::Status first;
  for (PsFuture& f : idle_pushes_) first.Update(f.Wait());
  idle_pushes_.clear();
  return first;
}

absl::Status Trainer::Fill(Reader& reader, Slot& slot, bool training, int64_t step) {
  RETURN_IF_ERROR(slot.WaitPushes());
  while (true) {
    auto event = reader.Next(&slot.batch, kReaderWait);
    if (event.ok()) {
      slot.event = *event;
      break;
    }
    if (event.status().code() != absl::StatusCode::kDeadlineExceeded) return event.status();
    std::fprintf(stderr, "worker %d: still waiting for data: %s\n", options_.worker_index,
                 std::string(event.status().message()).c_str());
  }
  if (slot.event != ReadEvent::kBatch) return absl::OkStatus();
  slot.dedup->Run(slot.batch);
  const auto& tables = slot.dedup->tables();
  slot.pulls.resize(tables.size());
  // Rows of tables with l2_on_missed_steps are read as a dense optimizer
  // would hold them: caught up through the last step whose pushes have all
  // completed. Training: this worker's pushes up to step global_step_ - 2
  // have (filling a slot waited for the push of the batch it held, and
  // earlier slots were refilled before); evaluation follows drained pushes.
  const uint64_t catch_up_to =
      static_cast<uint64_t>(training ? std::max<int64_t>(global_step_ - 1, 0) : global_step_);
  // Training pulls carry the step (under SYNC / BOUNDED the one the batch
  // trains at, with its tag; PullTag is empty under ASYNC); evaluation's none.
  const uint64_t pull_step = !training                            ? 0
                             : sparse_sync_ == TrainConfig::ASYNC ? global_step_
                                                                  : step;
  const StepTag tag = training ? PullTag(step) : StepTag{};
  for (size_t t = 0; t < tables.size(); ++t) {
    const int sd = assembler_->server_dims()[t];
    slot.rows[t].resize(tables[t].unique_keys.size() * sd);
    slot.pulls[t] =
        options_.client->Pull(assembler_->table_names()[t], tables[t].unique_keys, sd,
                              slot.rows[t].data(), pull_step, tag, catch_up_to, lr_scale_);
  }
  return absl::OkStatus();
}

absl::Status Trainer::WaitPulls(Slot& slot) {
  for (PsFuture& f : slot.pulls) RETURN_IF_ERROR(f.Wait());
  return absl::OkStatus();
}

void Trainer::Assemble(const Slot& slot) {
  const size_t B = slot.batch.size, F = assembler_->num_fields(), D = assembler_->dim();
  emb_.resize(B * F * D);
  linear_.resize(assembler_->linear() ? B * F : 0);
  row_ptrs_.clear();
  for (const auto& rows : slot.rows) row_ptrs_.push_back(rows.data());
  assembler_->Assemble(slot.batch, *slot.dedup, row_ptrs_, emb_.data(), linear_.data());
}

absl::StatusOr<double> Trainer::TrainStep(Slot& slot) {
  RETURN_IF_ERROR(WaitPulls(slot));
  Assemble(slot);
  const Batch& batch = slot.batch;
  const int B = batch.size, F = assembler_->num_fields(), D = assembler_->dim();
  const bool linear = model_->NeedsLinear();
  nn::ModelInput in{
      B, F, D, emb_.data(), linear ? linear_.data() : nullptr, assembler_->sequences()};
  logits_.resize(B);
  d_logits_.resize(B);
  d_emb_.resize(emb_.size());
  if (linear) d_linear_.resize(linear_.size());
  const auto& specs = assembler_->sequence_specs();
  d_seq_.resize(specs.size());
  d_seq_ptrs_.resize(specs.size());
  for (size_t i = 0; i < specs.size(); ++i) {
    d_seq_[i].resize(static_cast<size_t>(B) * specs[i].max_len * D);
    d_seq_ptrs_[i] = d_seq_[i].data();
  }
  model_->params().ZeroGrads();
  model_->Forward(in, /*training=*/true, logits_.data());
  const double loss = model_->Loss(std::span<const float>(batch.labels.data(), B), d_logits_);
  if (!std::isfinite(loss)) {
    // Nothing of this step reaches the servers or the dense weights, and
    // the error ends the job before any checkpoint is taken from it.
    return absl::InternalError(absl::StrFormat(
        "step %d: the training loss is %f; stopping before its gradients are applied (no "
        "checkpoint is written from this state). Lower the learning rates, or look for "
        "extreme values in the data",
        global_step_, loss));
  }
  nn::ModelInputGrad grad{d_emb_.data(), linear ? d_linear_.data() : nullptr, d_seq_ptrs_};
  model_->Backward(in, d_logits_.data(), &grad);

  // Embedding gradients: per occurrence, summed per unique key. d_logits are
  // of this worker's mean loss; scaling by B / global batch makes the pushes
  // of all workers add up to the gradient of the global mean.
  const float push_scale = static_cast<float>(B) / static_cast<float>(config_.train().batch_size());
  const auto& tables = slot.dedup->tables();
  assembler_->Scatter(batch, *slot.dedup, d_emb_.data(), linear ? d_linear_.data() : nullptr,
                      d_seq_ptrs_, push_scale, &slot.grads);
  ++dedup_steps_;
  for (const TableKeys& tk : tables) {
    keys_before_dedup_ += static_cast<int64_t>(tk.index.size());
    keys_after_dedup_ += static_cast<int64_t>(tk.unique_keys.size());
  }
  slot.pushes.resize(tables.size());
  for (size_t t = 0; t < tables.size(); ++t) {
    const int sd = assembler_->server_dims()[t];
    const TableKeys& tk = tables[t];
    float* g = slot.grads[t].data();
    slot.counts[t].assign(tk.counts.begin(), tk.counts.end());
    slot.pushes[t] = options_.client->Push(assembler_->table_names()[t], tk.unique_keys, sd, g,
                                           slot.counts[t].data(), global_step_, lr_scale_,
                                           push_scale, PushTag());
  }
  return loss;
}

absl::StatusOr<int64_t> Trainer::DenseStep(int local_samples, bool* checkpoint_due) {
  auto grads = model_->params().grads();
  const CheckpointConfig& ckpt = config_.checkpoint();
  // The chief's clock decides time-based checkpoints; the flag rides on the
  // gradient allreduce so every worker agrees without another collective.
  bool due = options_.worker_index == 0 && ckpt.every_seconds() > 0 &&
             NowSeconds() - last_checkpoint_time_ >= ckpt.every_seconds();
  int64_t total = local_samples;
  if (options_.num_workers > 1) {
    // Sum of (samples x local mean gradient), of samples, and the flag.
    reduce_buffer_.resize(grads.size() + 2);
    for (size_t i = 0; i < grads.size(); ++i) reduce_buffer_[i] = grads[i] * local_samples;
    reduce_buffer_[grads.size()] = static_cast<float>(local_samples);
    reduce_buffer_[grads.size() + 1] = due ? 1.0f : 0.0f;
    MPI_Allreduce(MPI_IN_PLACE, reduce_buffer_.data(), static_cast<int>(reduce_buffer_.size()),
                  MPI_FLOAT, MPI_SUM, options_.comm);
    total = static_cast<int64_t>(std::llround(reduce_buffer_[grads.size()]));
    due = reduce_buffer_[grads.size() + 1] > 0;
    if (total > 0) {
      const float inv = 1.0f / static_cast<float>(total);
      for (size_t i = 0; i < grads.size(); ++i) grads[i] = reduce_buffer_[i] * inv;
    }
  }
  if (total == 0) {
    *checkpoint_due = false;
    return 0;
  }
  optimizer_->Step(model_->params().values(), grads);
  *checkpoint_due = due || (ckpt.every_steps() > 0 && (global_step_ + 1) % ckpt.every_steps() == 0);
  return total;
}

void Trainer::AverageBuffers() {
  if (options_.num_workers <= 1) return;
  auto buffers = model_->params().buffers();
  if (buffers.empty()) return;
  MPI_Allreduce(MPI_IN_PLACE, buffers.data(), static_cast<int>(buffers.size()), MPI_FLOAT, MPI_SUM,
                options_.comm);
  const float inv = 1.0f / options_.num_workers;
  for (float& b : buffers) b *= inv;
}

absl::StatusOr<EvalResult> Trainer::Evaluate(Split split, const std::string& scores_out) {
  AverageBuffers();
  ASSIGN_OR_RETURN(ReaderOptions ro,
                   MakeReaderOptions(config_, split, options_.worker_index, options_.num_workers));
  ro.batch_size = local_batch_;
  Reader reader(config_.data(), ro);
  RETURN_IF_ERROR(reader.Start());
  nn::EvalSet local;
  const int F = assembler_->num_fields();
  const bool linear = model_->NeedsLinear();
  // Two slots: the next batch's pulls fly while this one is scored.
  Slot& a = *slots_[0];
  Slot& b = *slots_[slots_.size() > 1 ? 1 : 0];
  RETURN_IF_ERROR(Fill(reader, a, false));
  Slot* cur = &a;
  Slot* next = &b;
  while (cur->event == ReadEvent::kBatch) {
    if (next != cur) RETURN_IF_ERROR(Fill(reader, *next, false));
    RETURN_IF_ERROR(WaitPulls(*cur));
    Assemble(*cur);
    const int B = cur->batch.size;
    logits_.resize(B);
    probs_.resize(B);
    nn::ModelInput in{B,
                      F,
                      assembler_->dim(),
                      emb_.data(),
                      linear ? linear_.data() : nullptr,
                      assembler_->sequences()};
    model_->Forward(in, /*training=*/false, logits_.data());
    nn::SigmoidProbabilities(logits_, probs_);
    local.Add(probs_, std::span<const float>(cur->batch.labels.data(), B));
    if (next == cur) {
      RETURN_IF_ERROR(Fill(reader, *cur, false));
    } else {
      std::swap(cur, next);
    }
  }
  reader.Stop();
  if (!scores_out.empty() && options_.num_workers == 1) {
    std::string text;
    for (float p : local.probs()) absl::StrAppendFormat(&text, "%.8g\n", p);
    RETURN_IF_ERROR(WriteFileAtomically(scores_out, text));
  }

  EvalResult result;
  double metrics[3] = {0, 0, 0};
  if (options_.num_workers <= 1) {
    ASSIGN_OR_RETURN(metrics[0], local.Auc());
    ASSIGN_OR_RETURN(metrics[1], local.LogLoss());
    metrics[2] = local.size();
  } else {
    // Gather every worker's scores on the chief: AUC does not decompose.
    const int W = options_.num_workers;
    int n = static_cast<int>(local.size());
    std::vector<int> sizes(W), offsets(W);
    MPI_Gather(&n, 1, MPI_INT, sizes.data(), 1, MPI_INT, 0, options_.comm);
    int total = 0;
    for (int w = 0; w < W; ++w) {
      offsets[w] = total;
      total += sizes[w];
    }
    std::vector<float> probs(options_.worker_index == 0 ? total : 0), labels(probs.size());
    MPI_Gatherv(local.probs().data(), n, MPI_FLOAT, probs.data(), sizes.data(), offsets.data(),
                MPI_FLOAT, 0, options_.comm);
    MPI_Gatherv(local.labels().data(), n, MPI_FLOAT, labels.data(), sizes.data(), offsets.data(),
                MPI_FLOAT, 0, options_.comm);
    absl::Status status;
    if (options_.worker_index == 0) {
      auto auc = nn::ComputeAuc(probs, labels);
      auto ll = nn::ComputeLogLoss(probs, labels);
      if (auc.ok() && ll.ok()) {
        metrics[0] = *auc;
        metrics[1] = *ll;
        metrics[2] = total;
      } else {
        status = auc.ok() ? ll.status() : auc.status();
        metrics[2] = -1;
      }
    }
    MPI_Bcast(metrics, 3, MPI_DOUBLE, 0, options_.comm);
    if (metrics[2] < 0) return absl::FailedPreconditionError("evaluation failed on the chief");
  }
  result.auc = metrics[0];
  result.logloss = metrics[1];
  result.samples = static_cast<int64_t>(metrics[2]);
  return result;
}

double Trainer::MonitorValue(const EvalResult& r) const {
  return config_.train().monitor() == TrainConfig::AUC ? r.auc : r.auc - r.logloss;
}

absl::Status Trainer::Log(const std::string& json_line) {
  if (options_.worker_index != 0 || options_.run_dir.empty()) return absl::OkStatus();
  std::ofstream out(options_.run_dir + "/metrics.jsonl", std::ios::app);
  out << json_line << "\n";
  if (!out)
    return absl::UnavailableError(absl::StrCat(options_.run_dir, "/metrics.jsonl: write failed"));
  return absl::OkStatus();
}

int64_t Trainer::PrintJobStart(const ReaderOptions& reader_options) {
  const TrainConfig& train = config_.train();
  const int64_t lines =
      CountLines(reader_options.files, config_.data().format() == DataConfig::CSV);
  const int64_t steps_per_epoch = (lines + train.batch_size() - 1) / train.batch_size();
  std::printf(
      "[train] %s: model %s, %d worker(s), global batch %d, %lld train lines (%lld steps/epoch), "
      "up to %d epoch(s)%s\n",
      config_.name().c_str(), ModelConfig::Type_Name(config_.model().type()).c_str(),
      options_.num_workers, train.batch_size(), static_cast<long long>(lines),
      static_cast<long long>(steps_per_epoch), train.epochs(),
      epochs_done_ > 0 || global_step_ > 0
          ? absl::StrFormat(", resuming at step %d (epoch %d)", global_step_, epochs_done_ + 1)
                .c_str()
          : "");
  std::fflush(stdout);
  return steps_per_epoch;
}

absl::Status Trainer::TrainEpoch(int epoch, Reader& reader, int64_t steps_per_epoch,
                                 EpochStats* stats, bool* stop) {
  const TrainConfig& train = config_.train();
  const bool talk = options_.worker_index == 0 && !options_.quiet;
  const size_t depth = slots_.size();
  const size_t ahead = depth - 1;  // batches filled: computing + pulls in flight
  // Fill the pipeline: item i of the epoch lives in slot i % depth.
  size_t head = 0, filled = 0;
  bool local_done = false;  // this worker reached its end of epoch
  // Item i of the epoch trains at step epoch_step + i: every worker takes
  // part in every step, with a batch until it runs out of data.
  const int64_t epoch_step = global_step_;
  auto fill_ahead = [&]() -> absl::Status {
    while (!local_done && filled < head + ahead) {
      const int64_t step = epoch_step + static_cast<int64_t>(filled);
      // A pull for a step that will not run would wait for pushes that
      // never come.
      if (train.max_steps() > 0 && step >= train.max_steps()) break;
      Slot& s = *slots_[filled % depth];
      RETURN_IF_ERROR(Fill(reader, s, true, step));
      ++filled;
      if (s.event != ReadEvent::kBatch) local_done = true;
    }
    return absl::OkStatus();
  };
  const auto epoch_start = Clock::now();
  double loss_sum = 0;
  int64_t loss_count = 0;
  auto last_log = Clock::now();
  while (true) {
    RETURN_IF_ERROR(fill_ahead());
    int local_samples = 0;
    bool trained = false;
    if (head < filled && slots_[head % depth]->event == ReadEvent::kBatch) {
      trained = true;
      Slot& s = *slots_[head % depth];
      ASSIGN_OR_RETURN(double loss, TrainStep(s));
      local_samples = s.batch.size;
      last_position_ = s.batch.position;
      loss_sum += loss;
      ++loss_count;
      ++head;
    }
    bool checkpoint_due = false;
    ASSIGN_OR_RETURN(int64_t step_samples, DenseStep(local_samples, &checkpoint_due));
    if (step_samples == 0) break;  // every worker is at its end of epoch
    if (!trained) PushNothing();
    ++global_step_;
    ++stats->steps;
    stats->samples += step_samples;
    samples_trained_ += step_samples;
    if (talk &&
        (stats->steps % std::max(1, train.log_every_steps()) == 0 || Seconds(last_log) > 30)) {
      const double secs = Seconds(epoch_start);
      const double rate = stats->samples / std::max(secs, 1e-9);
      const double eta =
          steps_per_epoch > 0 ? (steps_per_epoch - stats->steps) * secs / stats->steps : -1;
      std::printf("[train] epoch %d step %lld/%lld | %.0f samples/s | loss %.5f | epoch ETA %s\n",
                  epoch, static_cast<long long>(stats->steps),
                  static_cast<long long>(steps_per_epoch), rate,
                  loss_sum / std::max<int64_t>(1, loss_count), FormatEta(eta).c_str());
      std::fflush(stdout);
      last_log = Clock::now();
      loss_sum = 0;
      loss_count = 0;
    }
    if (checkpoint_due) RETURN_IF_ERROR(SaveCheckpoint());
    if (train.max_steps() > 0 && global_step_ >= train.max_steps()) {
      *stop = true;
      break;
    }
  }
  for (auto& s : slots_) RETURN_IF_ERROR(s->WaitPushes());
  RETURN_IF_ERROR(WaitIdlePushes());
  stats->seconds = Seconds(epoch_start);
  return absl::OkStatus();
}

absl::Status Trainer::ValidateEpoch(int epoch, const EpochStats& stats, bool has_test, bool* stop) {
  const TrainConfig& train = config_.train();
  const bool talk = options_.worker_index == 0 && !options_.quiet;
  ASSIGN_OR_RETURN(EvalResult valid, Evaluate(Split::kValid));
  const double rate = stats.samples / std::max(stats.seconds, 1e-9);
  RETURN_IF_ERROR(Log(absl::StrFormat(
      R"({"epoch": %d, "step": %d, "split": "valid", "auc": %.6f, "logloss": %.6f, "samples": %d, "samples_per_sec": %.1f})",
      epoch, global_step_, valid.auc, valid.logloss, valid.samples, rate)));
  const double monitor = MonitorValue(valid);
  const bool improved = monitor > best_monitor_ + 1e-6;
  if (talk) {
    std::printf("[valid] epoch %d: AUC %.6f logloss %.6f (%lld samples)%s\n", epoch, valid.auc,
                valid.logloss, static_cast<long long>(valid.samples), improved ? " *best" : "");
    std::fflush(stdout);
  }
  if (!improved) {
    *stop = OnPlateau(epoch);
    return absl::OkStatus();
  }
  best_monitor_ = monitor;
  bad_epochs_ = 0;
  summary_.best_epoch = epoch;
  summary_.best_valid = valid;
  if (has_test) {
    const std::string scores = train.write_test_scores() && !options_.run_dir.empty()
                                   ? options_.run_dir + "/test_scores.txt"
                                   : "";
    ASSIGN_OR_RETURN(summary_.test, Evaluate(Split::kTest, scores));
    summary_.has_test = true;
  }
  return absl::OkStatus();
}

bool Trainer::OnPlateau(int epoch) {
  const TrainConfig& train = config_.train();
  const bool talk = options_.worker_index == 0 && !options_.quiet;
  ++bad_epochs_;
  if (train.plateau_lr_factor() > 1) {
    // FuxiCTR's reduce-on-plateau: both dense and sparse learning
    // rates, floored at 1e-6 of the dense rate.
    const float floor = 1e-6f / std::max(1e-12f, train.dense_optimizer().learning_rate());
    lr_scale_ = std::max(floor, lr_scale_ / train.plateau_lr_factor());
    optimizer_->set_learning_rate(train.dense_optimizer().learning_rate() * lr_scale_);
    if (talk) std::printf("[train] no improvement: learning rates x%g\n", lr_scale_);
  }
  if (train.patience() > 0 && bad_epochs_ >= train.patience()) {
    if (talk)
      std::printf("[train] early stop after epoch %d (best epoch %d)\n", epoch,
                  summary_.best_epoch);
    return true;
  }
  return false;
}

absl::Status Trainer::ExportBest() {
  const bool talk = !options_.quiet;
  // Serve the best epoch, as FuxiCTR restores it before testing.
  const std::string source = best_checkpoint_.empty() ? last_checkpoint_ : best_checkpoint_;
  std::string out = config_.checkpoint().export_dir();
  if (out.empty()) out = absl::StrCat(options_.run_dir.empty() ? "." : options_.run_dir, "/export");
  ASSIGN_OR_RETURN(ExportManifest exported,
                   ExportFromCheckpoint(source, out, config_.checkpoint().export_fp16(),
                                        config_.checkpoint().export_min_count()));
  uint64_t rows = 0;
  for (const ExportTable& t : exported.table()) rows += t.rows();
  uint64_t bytes = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(out, ec)) {
    if (e.is_regular_file()) bytes += e.file_size();
  }
  if (talk) {
    std::printf("[export] %s (from %s): %llu rows in %d tables, %.1f MB, %s\n", out.c_str(),
                source.c_str(), static_cast<unsigned long long>(rows), exported.table_size(),
                bytes / 1048576.0, config_.checkpoint().export_fp16() ? "fp16" : "fp32");
  }
  return absl::OkStatus();
}

absl::Status Trainer::WriteSummary(const TrainSummary& summary) {
  const bool chief = options_.worker_index == 0;
  if (summary.has_test) {
    RETURN_IF_ERROR(Log(absl::StrFormat(
        R"({"epoch": %d, "step": %d, "split": "test", "auc": %.6f, "logloss": %.6f, "samples": %d})",
        summary.best_epoch, global_step_, summary.test.auc, summary.test.logloss,
        summary.test.samples)));
  }
  if (chief && !options_.run_dir.empty()) {
    std::ofstream out(options_.run_dir + "/summary.json");
    out << absl::StrFormat(
               R"({"config": "%s", "model": "%s", "workers": %d, "epochs_run": %d, "best_epoch": %d, "steps": %d, )"
               R"("valid_auc": %.6f, "valid_logloss": %.6f, "test_auc": %.6f, "test_logloss": %.6f, )"
               R"("samples_trained": %d, "train_samples_per_sec": %.1f, "seconds": %.1f, "checkpoint": "%s"})",
               config_.name(), ModelConfig::Type_Name(config_.model().type()), options_.num_workers,
               summary.epochs_run, summary.best_epoch, summary.steps, summary.best_valid.auc,
               summary.best_valid.logloss, summary.test.auc, summary.test.logloss,
               summary.samples_trained, summary.train_samples_per_sec, summary.seconds,
               last_checkpoint_)
        << "\n";
  }
  return absl::OkStatus();
}

void Trainer::PrintSummary(const TrainSummary& summary) const {
  if (summary.has_test) {
    std::printf("[test] AUC %.6f logloss %.6f (best epoch %d, %lld samples)\n", summary.test.auc,
                summary.test.logloss, summary.best_epoch,
                static_cast<long long>(summary.test.samples));
  }
  if (dedup_steps_ > 0) {
    std::printf(
        "[keys] per batch (this worker, all tables): %.1f before de-duplication, %.1f after\n",
        static_cast<double>(keys_before_dedup_) / dedup_steps_,
        static_cast<double>(keys_after_dedup_) / dedup_steps_);
  }
  PrintServerSummary();
  std::printf("[done] %lld steps, %.0f samples/s training, %.1f s in all\n",
              static_cast<long long>(summary.steps), summary.train_samples_per_sec,
              summary.seconds);
  std::fflush(stdout);
}

void Trainer::PrintServerSummary() const {
  auto stats = options_.client->Stats();
  if (!stats.ok()) return;  // the job's result stands without it
  uint64_t in_memory = 0, on_disk = 0, memory = 0, limit = 0, reads = 0, appended = 0,
           compacted = 0;
  for (const ServerStats& server : *stats) {
    memory += server.bytes_in_memory();
    limit += server.memory_limit_bytes();
    for (const TableStats& t : server.table()) {
      in_memory += t.rows_in_memory();
      on_disk += t.rows_on_disk();
      reads += t.disk_reads();
      appended += t.disk_written_bytes();
      compacted += t.compacted_segments();
    }
  }
  std::printf("[ps] %zu server(s): %llu rows in memory, %llu in the spill logs; %.0f MB in memory",
              stats->size(), static_cast<unsigned long long>(in_memory),
              static_cast<unsigned long long>(on_disk), memory / 1048576.0);
  if (limit > 0) {
    std::printf(
        " (limit %.0f MB); %llu rows read back from disk, %.0f MB appended, %llu segments "
        "compacted",
        limit / 1048576.0, static_cast<unsigned long long>(reads), appended / 1048576.0,
        static_cast<unsigned long long>(compacted));
  }
  std::printf("\n");
  if (sparse_sync_ == TrainConfig::ASYNC) return;
  // Steps of pushes a training pull was served without (a histogram over
  // all servers' pulls): all in bucket 0 under SYNC, within max_staleness
  // under BOUNDED.
  std::vector<uint64_t> hist;
  uint64_t waits = 0;
  double wait_seconds = 0;
  for (const ServerStats& server : *stats) {
    if (hist.size() < static_cast<size_t>(server.staleness_histogram_size()))
      hist.resize(server.staleness_histogram_size());
    for (int i = 0; i < server.staleness_histogram_size(); ++i)
      hist[i] += server.staleness_histogram(i);
    waits += server.sync_waits();
    wait_seconds += server.sync_wait_seconds();
  }
  while (hist.size() > 1 && hist.back() == 0) hist.pop_back();
  std::vector<std::string> buckets;
  for (size_t i = 0; i < hist.size(); ++i) buckets.push_back(absl::StrCat(i, ":", hist[i]));
  std::printf(
      "[sync] %s%s: pull staleness in steps {%s}; %llu pulls waited for a step, %.2f s in all\n",
      TrainConfig::SparseSync_Name(sparse_sync_).c_str(),
      sparse_sync_ == TrainConfig::BOUNDED
          ? absl::StrCat(" (max_staleness ", config_.train().max_staleness(), ")").c_str()
          : "",
      absl::StrJoin(buckets, " ").c_str(), static_cast<unsigned long long>(waits), wait_seconds);
}

absl::StatusOr<TrainSummary> Trainer::Run() {
  const TrainConfig& train = config_.train();
  const bool chief = options_.worker_index == 0;
  const bool talk = chief && !options_.quiet;
  ASSIGN_OR_RETURN(
      ReaderOptions ro,
      MakeReaderOptions(config_, Split::kTrain, options_.worker_index, options_.num_workers));
  ro.batch_size = local_batch_;
  if (options_.resume || !options_.resume_from.empty()) RETURN_IF_ERROR(Restore(&ro));
  first_step_ = global_step_;
  last_checkpoint_time_ = NowSeconds();
  const bool has_valid = config_.data().valid_size() > 0 && !train.skip_eval();
  const bool has_test = config_.data().test_size() > 0 && !train.skip_eval();
  const int64_t steps_per_epoch = talk ? PrintJobStart(ro) : 0;
  Reader reader(config_.data(), ro);
  RETURN_IF_ERROR(reader.Start());

  const auto start = Clock::now();
  bool stop = train.patience() > 0 && bad_epochs_ >= train.patience();
  int64_t train_samples = 0;
  double train_seconds = 0;
  for (int epoch = epochs_done_ + 1; epoch <= train.epochs() && !stop; ++epoch) {
    EpochStats stats;
    RETURN_IF_ERROR(TrainEpoch(epoch, reader, steps_per_epoch, &stats, &stop));
    train_samples += stats.samples;
    train_seconds += stats.seconds;
    summary_.epochs_run = epoch;
    if (stop) {
      for (auto& s : slots_) s->Drain();
      break;
    }
    // The reader's next item starts the next epoch; the pipeline is empty.
    if (has_valid) RETURN_IF_ERROR(ValidateEpoch(epoch, stats, has_test, &stop));
    epochs_done_ = epoch;
    const bool best_now = summary_.best_epoch == epoch;
    if ((config_.checkpoint().every_epochs() > 0 &&
         epoch % config_.checkpoint().every_epochs() == 0) ||
        best_now) {
      RETURN_IF_ERROR(SaveCheckpoint());
      if (best_now) best_checkpoint_ = last_checkpoint_;
    }
  }
  reader.Stop();
  if (!has_valid && has_test) {
    ASSIGN_OR_RETURN(summary_.test, Evaluate(Split::kTest));
    summary_.has_test = true;
  }
  if (config_.checkpoint().at_end()) RETURN_IF_ERROR(SaveCheckpoint());
  if (chief && config_.checkpoint().export_at_end() && !last_checkpoint_.empty()) {
    RETURN_IF_ERROR(ExportBest());
  }
  TrainSummary summary = summary_;
  summary.steps = global_step_;
  summary.samples_trained = samples_trained_;
  summary.seconds = Seconds(start);
  summary.train_samples_per_sec = train_samples / std::max(train_seconds, 1e-9);
  RETURN_IF_ERROR(WriteSummary(summary));
  if (talk) PrintSummary(summary);
  return summary;
}

absl::Status Trainer::AgreeOnStatus(const absl::Status& chief_status) {
  if (options_.num_workers <= 1) return chief_status;
  std::string message(chief_status.message());
  int header[2] = {static_cast<int>(chief_status.code()), static_cast<int>(message.size())};
  MPI_Bcast(header, 2, MPI_INT, 0, options_.comm);
  message.resize(header[1]);
  MPI_Bcast(message.data(), header[1], MPI_CHAR, 0, options_.comm);
  return absl::Status(static_cast<absl::StatusCode>(header[0]), message);
}

absl::Status Trainer::SaveCheckpoint() {
  const auto start = Clock::now();
  // Every push of every worker is applied before any server saves, so each
  // row's weights and optimizer state come from one instant.
  for (auto& s : slots_) s->Drain();
  RETURN_IF_ERROR(WaitIdlePushes());
  const int W = options_.num_workers;
  int64_t mine[4] = {last_position_.epoch, last_position_.file, last_position_.line,
                     last_position_.skip};
  if (last_position_.epoch < epochs_done_)
    mine[0] = epochs_done_, mine[1] = 0, mine[2] = 0, mine[3] = 0;
  std::vector<int64_t> positions(4 * W);
  if (W > 1) {
    MPI_Gather(mine, 4, MPI_INT64_T, positions.data(), 4, MPI_INT64_T, 0, options_.comm);
  } else {
    std::copy(mine, mine + 4, positions.begin());
  }
  absl::Status status;
  const std::string dir = absl::StrCat(checkpoint_root_, "/ckpt-", global_step_);
  bool created = false;  // this attempt made `dir`: a failure removes it
  if (options_.worker_index == 0) {
    status = [&]() -> absl::Status {
      if (auto existing = ReadCheckpointManifest(dir); existing.ok()) {
        // Taken at this step already (say, periodically on the last step):
        // rows and dense state are the same; bring the rest up to date.
        existing->set_epochs_done(epochs_done_);
        existing->clear_position();
        for (int w = 0; w < W; ++w) {
          ReaderPositionProto* p = existing->add_position();
          p->set_epoch(positions[4 * w]);
          p->set_file(positions[4 * w + 1]);
          p->set_line(positions[4 * w + 2]);
          p->set_skip(positions[4 * w + 3]);
        }
        existing->set_best_monitor(best_monitor_);
        existing->set_bad_epochs(bad_epochs_);
        existing->set_best_epoch(summary_.best_epoch);
        existing->set_best_valid_auc(summary_.best_valid.auc);
        existing->set_best_valid_logloss(summary_.best_valid.logloss);
        if (summary_.has_test) {
          existing->set_test_auc(summary_.test.auc);
          existing->set_test_logloss(summary_.test.logloss);
        }
        existing->set_learning_rate_scale(lr_scale_);
        return WriteCheckpointManifest(dir, *existing);
      }
      const auto& weights = model_->params().values();
      if (!AllFinite(weights.data(), weights.size())) {
        return absl::InternalError(
            absl::StrCat(dir, ": not written: the dense weights hold a NaN or an infinity"));
      }
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);  // leftovers of an interrupted attempt
      created = true;
      std::filesystem::create_directories(dir, ec);
      if (ec) return ErrnoError(dir, "cannot create", ec.value());
      ASSIGN_OR_RETURN(std::vector<uint64_t> rows, options_.client->Save(dir, absl::Minutes(30)));
      CheckpointManifest m;
      m.set_global_step(global_step_);
      m.set_epochs_done(epochs_done_);
      *m.mutable_config() = config_;
      m.set_config_fingerprint(ConfigFingerprint(config_));
      m.set_num_servers(options_.client->num_shards());
      m.set_num_workers(W);
      const std::vector<TableConfig> tables = ServerTables(config_);
      for (size_t i = 0; i < tables.size(); ++i) {
        CheckpointTable* t = m.add_table();
        t->set_name(tables[i].name());
        t->set_id(i);
        t->set_dim(tables[i].dim());
        auto opt = SparseOptimizer::Create(tables[i].optimizer(), tables[i].dim());
        t->set_state_dim(opt.ok() ? (*opt)->state_dim() : 0);
      }
      // Dense: values, buffers, optimizer state.
      auto& arena = model_->params();
      auto state = optimizer_->state();
      std::string dense;
      dense.append(reinterpret_cast<const char*>(arena.values().data()),
                   arena.values().size_bytes());
      dense.append(reinterpret_cast<const char*>(arena.buffers().data()),
                   arena.buffers().size_bytes());
      dense.append(reinterpret_cast<const char*>(state.data()), state.size_bytes());
      RETURN_IF_ERROR(WriteFileAtomically(dir + "/dense.bin", dense));
      m.mutable_dense()->set_path("dense.bin");
      m.mutable_dense()->set_bytes(dense.size());
      m.mutable_dense()->set_crc32c(Crc32c(dense));
      m.set_dense_values(arena.values().size());
      m.set_dense_buffers(arena.buffers().size());
      m.set_optimizer_state(state.size());
      m.set_optimizer_step(optimizer_->step());
      m.set_learning_rate_scale(lr_scale_);
      for (int w = 0; w < W; ++w) {
        ReaderPositionProto* p = m.add_position();
        p->set_epoch(positions[4 * w]);
        p->set_file(positions[4 * w + 1]);
        p->set_line(positions[4 * w + 2]);
        p->set_skip(positions[4 * w + 3]);
      }
      m.set_samples_trained(samples_trained_);
      m.set_best_monitor(best_monitor_);
      m.set_bad_epochs(bad_epochs_);
      m.set_best_epoch(summary_.best_epoch);
      m.set_best_valid_auc(summary_.best_valid.auc);
      m.set_best_valid_logloss(summary_.best_valid.logloss);
      if (summary_.has_test) {
        m.set_test_auc(summary_.test.auc);
        m.set_test_logloss(summary_.test.logloss);
      }
      uint64_t written = 0;
      for (uint64_t r : rows) written += r;
      m.set_rows_written(written);
      m.set_previous(last_checkpoint_);
      for (const auto& entry : std::filesystem::recursive_directory_iterator(dir, ec)) {
        if (!entry.is_regular_file()) continue;
        CheckpointFile* f = m.add_file();
        f->set_path(std::filesystem::relative(entry.path(), dir).string());
        f->set_bytes(entry.file_size());
      }
      m.set_seconds(Seconds(start));
      RETURN_IF_ERROR(WriteCheckpointManifest(dir, m));  // the checkpoint exists from here on
      // Only now may older ones go.
      std::vector<std::string> all = ListCheckpoints(checkpoint_root_);
      for (size_t i = std::max(1, config_.checkpoint().keep()); i < all.size(); ++i) {
        if (all[i] == best_checkpoint_) continue;  // the best epoch is what gets exported
        std::filesystem::remove_all(all[i], ec);
      }
      if (!options_.quiet) {
        std::printf("[checkpoint] %s: step %lld, %llu rows written, %.2f s\n", dir.c_str(),
                    static_cast<long long>(global_step_), static_cast<unsigned long long>(written),
                    Seconds(start));
        std::fflush(stdout);
      }
      return absl::OkStatus();
    }();
    if (!status.ok() && created) {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);  // a partial checkpoint is no checkpoint
    }
  }
  RETURN_IF_ERROR(AgreeOnStatus(status));
  last_checkpoint_ = dir;
  last_checkpoint_time_ = NowSeconds();
  return absl::OkStatus();
}

absl::Status Trainer::ValidateCheckpoint(const std::string& dir, CheckpointManifest* manifest) {
  ASSIGN_OR_RETURN(*manifest, ReadCheckpointManifest(dir));
  if (manifest->config_fingerprint() != ConfigFingerprint(config_)) {
    return absl::FailedPreconditionError(absl::StrCat(
        dir, ": written for another config (its tables, features or model differ from ",
        config_.name(), "'s)"));
  }
  for (const CheckpointFile& f : manifest->file()) {
    const std::string path = absl::StrCat(dir, "/", f.path());
    std::error_code ec;
    const uint64_t size = std::filesystem::file_size(path, ec);
    if (ec) return absl::DataLossError(absl::StrCat(path, ": missing"));
    if (size != f.bytes()) {
      return absl::DataLossError(
          absl::StrFormat("%s: %d bytes, the manifest says %d", path, size, f.bytes()));
    }
  }
  std::ifstream in(absl::StrCat(dir, "/dense.bin"), std::ios::binary);
  std::string dense((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (dense.size() != manifest->dense().bytes() || Crc32c(dense) != manifest->dense().crc32c()) {
    return absl::DataLossError(absl::StrCat(dir, "/dense.bin: checksum mismatch (damaged)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> Trainer::PickCheckpoint() {
  if (!options_.resume_from.empty()) {
    CheckpointManifest m;
    RETURN_IF_ERROR(ValidateCheckpoint(options_.resume_from, &m));
    return options_.resume_from;
  }
  std::vector<std::string> all = ListCheckpoints(checkpoint_root_);
  if (all.empty())
    return absl::NotFoundError(
        absl::StrCat("--resume: no complete checkpoint in ", checkpoint_root_));
  CheckpointManifest m;
  absl::Status newest = ValidateCheckpoint(all[0], &m);
  if (newest.ok()) return all[0];
  for (size_t i = 1; i < all.size(); ++i) {
    if (ValidateCheckpoint(all[i], &m).ok()) {
      return absl::Status(
          newest.code(),
          absl::StrCat("the newest checkpoint is refused: ", newest.message(),
                       ". The next older one is whole: resume from it with --resume_from ",
                       all[i]));
    }
  }
  return absl::Status(newest.code(),
                      absl::StrCat("the newest checkpoint is refused: ", newest.message(),
                                   "; no older checkpoint is whole"));
}

absl::Status Trainer::Restore(ReaderOptions* reader_options) {
  std::string dir;
  absl::Status status;
  if (options_.worker_index == 0) {
    auto picked = PickCheckpoint();
    status = picked.status();
    if (picked.ok()) {
      dir = *picked;
      auto manifest = ReadCheckpointManifest(dir);
      if (manifest.ok() && manifest->num_workers() != static_cast<uint32_t>(options_.num_workers)) {
        status = absl::FailedPreconditionError(
            absl::StrFormat("%s was written by %d workers; resume with --workers %d (reading "
                            "positions are per worker)",
                            dir, manifest->num_workers(), manifest->num_workers()));
      } else if (manifest.ok()) {
        auto rows = options_.client->Load(dir, absl::Minutes(30));
        status = rows.status();
      } else {
        status = manifest.status();
      }
    }
  }
  RETURN_IF_ERROR(AgreeOnStatus(status));
  if (options_.num_workers > 1) {
    int n = static_cast<int>(dir.size());
    MPI_Bcast(&n, 1, MPI_INT, 0, options_.comm);
    dir.resize(n);
    MPI_Bcast(dir.data(), n, MPI_CHAR, 0, options_.comm);
  }
  ASSIGN_OR_RETURN(CheckpointManifest m, ReadCheckpointManifest(dir));
  auto& arena = model_->params();
  auto state = optimizer_->state();
  if (m.dense_values() != arena.values().size() || m.dense_buffers() != arena.buffers().size() ||
      m.optimizer_state() != state.size()) {
    return absl::FailedPreconditionError(
        absl::StrCat(dir, ": dense state does not fit this model"));
  }
  std::ifstream in(absl::StrCat(dir, "/dense.bin"), std::ios::binary);
  in.read(reinterpret_cast<char*>(arena.values().data()), arena.values().size_bytes());
  in.read(reinterpret_cast<char*>(arena.buffers().data()), arena.buffers().size_bytes());
  in.read(reinterpret_cast<char*>(state.data()), state.size_bytes());
  if (!in) return absl::DataLossError(absl::StrCat(dir, "/dense.bin: short read"));
  optimizer_->set_step(m.optimizer_step());
  lr_scale_ = m.learning_rate_scale();
  optimizer_->set_learning_rate(config_.train().dense_optimizer().learning_rate() * lr_scale_);
  global_step_ = m.global_step();
  samples_trained_ = m.samples_trained();
  epochs_done_ = m.epochs_done();
  best_monitor_ = m.best_monitor();
  bad_epochs_ = m.bad_epochs();
  summary_.best_epoch = m.best_epoch();
  summary_.best_valid.auc = m.best_valid_auc();
  summary_.best_valid.logloss = m.best_valid_logloss();
  if (m.has_test_auc()) {
    summary_.test.auc = m.test_auc();
    summary_.test.logloss = m.test_logloss();
    summary_.has_test = true;
  }
  if (options_.worker_index >= m.position_size()) {
    return absl::DataLossError(
        absl::StrFormat("%s: the manifest has %d reader positions for %d workers", dir,
                        m.position_size(), options_.num_workers));
  }
  const ReaderPositionProto& p = m.position(options_.worker_index);
  reader_options->start = {p.epoch(), p.file(), p.line(), p.skip()};
  last_position_ = reader_options->start;
  last_checkpoint_ = dir;
  if (options_.worker_index == 0 && !options_.quiet) {
    std::printf("[resume] %s: step %lld, %d epoch(s) done\n", dir.c_str(),
                static_cast<long long>(global_step_), epochs_done_);
    std::fflush(stdout);
  }
  return absl::OkStatus();
}

}  // namespace ctrps
