#include "worker/predictor.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/config.h"
#include "common/status.h"
#include "ps/sparse_optimizer.h"
#include "worker/data/key_dedup.h"
#include "worker/data/sample_parser.h"
#include "worker/export.h"
#include "worker/nn/bce_loss.h"
#include "worker/nn/models/ctr_model.h"

namespace ctrps {

namespace fs = std::filesystem;

struct Predictor::Context {
  Context(const FeatureAssembler& a, const DataConfig& data) : assembler(a), dedup(data) {}

  FeatureAssembler assembler;
  KeyDedup dedup;
  std::unique_ptr<nn::CtrModel> model;
  std::unique_ptr<SampleParser> parser;  // headerless formats; CSV parses with its own
  Batch batch;
  std::vector<std::vector<float>> rows;  // per table: unique keys x server dim
  std::vector<const float*> row_ptrs;
  std::vector<float> emb, linear, logits;
};

class Predictor::Lease {
 public:
  Lease(const Predictor* owner, std::unique_ptr<Context> context)
      : owner_(owner), context_(std::move(context)) {}
  Lease(Lease&& other) = default;
  ~Lease() {
    if (context_ != nullptr) owner_->Release(std::move(context_));
  }
  Context& operator*() const { return *context_; }
  Context* operator->() const { return context_.get(); }

 private:
  const Predictor* owner_;
  std::unique_ptr<Context> context_;
};

namespace {

// The model as training built it: with the assembler's sequences, if any.
absl::StatusOr<std::unique_ptr<nn::CtrModel>> CreateModelFor(const ExperimentConfig& config,
                                                             const FeatureAssembler& assembler) {
  if (assembler.sequence_specs().empty()) {
    return nn::CreateModel(config.model(), assembler.num_fields(), assembler.dim(),
                           config.train().seed());
  }
  return nn::CreateModel(config.model(), assembler.num_fields(), assembler.dim(),
                         config.train().seed(), assembler.sequence_specs());
}

absl::StatusOr<std::vector<float>> ReadFloats(const std::string& path, uint64_t count) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return absl::NotFoundError(absl::StrCat(path, ": no such file"));
  const uint64_t bytes = fs::file_size(path, ec);
  if (ec || bytes != 4 * count) {
    return absl::DataLossError(absl::StrFormat(
        "%s: %d bytes, the manifest says %d floats (%d bytes)", path, bytes, count, 4 * count));
  }
  std::vector<float> values(count);
  std::ifstream in(path, std::ios::binary);
  if (!in.read(reinterpret_cast<char*>(values.data()), static_cast<std::streamsize>(bytes))) {
    return ErrnoError(path, "cannot read");
  }
  return values;
}

// A caller's batch, checked before it indexes anything.
absl::Status CheckBatch(const Batch& batch, const DataConfig& data) {
  if (batch.size < 0) return absl::InvalidArgumentError("batch size is negative");
  if (static_cast<int>(batch.fields.size()) != data.feature_size()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("the batch has %d fields, the config %d features", batch.fields.size(),
                        data.feature_size()));
  }
  for (int f = 0; f < data.feature_size(); ++f) {
    const FieldBatch& fb = batch.fields[f];
    const std::string& name = data.feature(f).name();
    if (fb.size() != batch.size || fb.offsets[0] != 0 ||
        static_cast<size_t>(fb.offsets.back()) != fb.keys.size()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("field \"%s\": %d offsets and %d keys do not describe %d samples", name,
                          fb.offsets.size(), fb.keys.size(), batch.size));
    }
    for (int b = 0; b < batch.size; ++b) {
      if (fb.offsets[b + 1] < fb.offsets[b]) {
        return absl::InvalidArgumentError(
            absl::StrFormat("field \"%s\": offsets decrease at sample %d", name, b));
      }
    }
    if (data.feature(f).kind() == FeatureConfig::NUMERIC &&
        fb.values.size() != static_cast<size_t>(batch.size)) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "numeric field \"%s\" has %d values for %d samples", name, fb.values.size(), batch.size));
    }
  }
  return absl::OkStatus();
}

}  // namespace

void Predictor::Table::Lookup(uint64_t key, float* out) const {
  for (const auto& file : files) {
    const int64_t row = file->Find(key);
    if (row >= 0) {
      file->ReadRow(static_cast<uint64_t>(row), out);
      return;
    }
  }
  if (missing_is_zero) {
    std::fill(out, out + dim, 0.0f);
  } else {
    InitializeRow(init, key, out, dim);
  }
}

absl::StatusOr<std::unique_ptr<Predictor>> Predictor::Load(const std::string& export_dir) {
  std::unique_ptr<Predictor> p(new Predictor());
  ASSIGN_OR_RETURN(p->manifest_, ReadExportManifest(export_dir));
  const std::string manifest_path = (fs::path(export_dir) / "manifest.pbtxt").string();
  const ExperimentConfig& config = p->manifest_.config();
  auto assembler = FeatureAssembler::Create(config);
  if (!assembler.ok()) {
    return absl::Status(assembler.status().code(),
                        absl::StrCat(manifest_path, ": ", assembler.status().message()));
  }
  p->assembler_ = std::make_unique<FeatureAssembler>(std::move(*assembler));

  // Dense weights: the model decides how many there must be.
  auto model = CreateModelFor(config, *p->assembler_);
  if (!model.ok()) {
    return absl::Status(model.status().code(),
                        absl::StrCat(manifest_path, ": ", model.status().message()));
  }
  const size_t want_values = (*model)->params().values().size();
  const size_t want_buffers = (*model)->params().buffers().size();
  if (p->manifest_.dense_values() != want_values || p->manifest_.dense_buffers() != want_buffers) {
    return absl::DataLossError(absl::StrFormat(
        "%s: %d dense values and %d buffers, but model %s over %d fields of dim %d has %d and %d",
        manifest_path, p->manifest_.dense_values(), p->manifest_.dense_buffers(),
        ModelConfig::Type_Name(config.model().type()), p->assembler_->num_fields(),
        p->assembler_->dim(), want_values, want_buffers));
  }
  const std::string dense_path =
      (fs::path(export_dir) /
       (p->manifest_.dense_file().empty() ? std::string("dense.bin") : p->manifest_.dense_file()))
          .string();
  ASSIGN_OR_RETURN(std::vector<float> dense, ReadFloats(dense_path, want_values + want_buffers));
  p->dense_values_.assign(dense.begin(), dense.begin() + want_values);
  p->dense_buffers_.assign(dense.begin() + want_values, dense.end());

  // Tables, in the order the assembler (and KeyDedup) lists them.
  const EmbDtype dtype = p->manifest_.fp16() ? EmbDtype::kF16 : EmbDtype::kF32;
  for (size_t t = 0; t < p->assembler_->table_names().size(); ++t) {
    const std::string& name = p->assembler_->table_names()[t];
    const ExportTable* et = nullptr;
    for (const ExportTable& e : p->manifest_.table()) {
      if (e.name() == name) et = &e;
    }
    if (et == nullptr) {
      return absl::DataLossError(absl::StrCat(manifest_path, ": no table \"", name,
                                              "\", which the config's features use"));
    }
    const int dim = p->assembler_->server_dims()[t];
    if (static_cast<int>(et->dim()) != dim) {
      return absl::DataLossError(absl::StrFormat("%s: table \"%s\" has dim %d, the model reads %d",
                                                 manifest_path, name, et->dim(), dim));
    }
    Table table;
    table.name = name;
    table.dim = dim;
    table.missing_is_zero = et->missing_is_zero();
    table.init = *FindTable(config, name);  // FeatureAssembler::Create checked it exists
    table.init.set_dim(dim);
    uint64_t rows = 0;
    for (const std::string& file : et->file()) {
      const std::string path = (fs::path(export_dir) / file).string();
      ASSIGN_OR_RETURN(std::unique_ptr<EmbeddingFile> f, EmbeddingFile::Open(path));
      if (f->dim() != dim || f->dtype() != dtype) {
        return absl::DataLossError(absl::StrFormat("%s: dim %d %s, the manifest says dim %d %s",
                                                   path, f->dim(),
                                                   f->dtype() == EmbDtype::kF16 ? "f16" : "f32",
                                                   dim, p->manifest_.fp16() ? "f16" : "f32"));
      }
      rows += f->rows();
      table.files.push_back(std::move(f));
    }
    if (rows != et->rows()) {
      return absl::DataLossError(
          absl::StrFormat("%s: table \"%s\" has %d rows in its files, the manifest says %d",
                          manifest_path, name, rows, et->rows()));
    }
    p->tables_.push_back(std::move(table));
  }

  // The model made to check the sizes becomes the first pooled one.
  ASSIGN_OR_RETURN(std::unique_ptr<Context> first, p->NewContext(std::move(*model)));
  p->Release(std::move(first));
  return p;
}

Predictor::~Predictor() = default;

absl::StatusOr<std::unique_ptr<Predictor::Context>> Predictor::NewContext(
    std::unique_ptr<nn::CtrModel> model) const {
  const ExperimentConfig& config = manifest_.config();
  auto context = std::make_unique<Context>(*assembler_, config.data());
  if (model == nullptr) {
    ASSIGN_OR_RETURN(model, CreateModelFor(config, *assembler_));
  }
  context->model = std::move(model);
  nn::ParameterArena& params = context->model->params();
  std::copy(dense_values_.begin(), dense_values_.end(), params.values().begin());
  std::copy(dense_buffers_.begin(), dense_buffers_.end(), params.buffers().begin());
  if (config.data().format() != DataConfig::CSV) {
    ASSIGN_OR_RETURN(context->parser, SampleParser::Create(config.data()));
  }
  context->rows.resize(tables_.size());
  return context;
}

absl::StatusOr<Predictor::Lease> Predictor::Acquire() const {
  {
    absl::MutexLock lock(&mu_);
    if (!pool_.empty()) {
      std::unique_ptr<Context> context = std::move(pool_.back());
      pool_.pop_back();
      return Lease(this, std::move(context));
    }
  }
  // Built outside the lock: creating a model takes a while.
  ASSIGN_OR_RETURN(std::unique_ptr<Context> context, NewContext());
  return Lease(this, std::move(context));
}

void Predictor::Release(std::unique_ptr<Context> context) const {
  absl::MutexLock lock(&mu_);
  pool_.push_back(std::move(context));
}

absl::Status Predictor::Score(Context& c, const Batch& batch, std::vector<float>* probs) const {
  const int B = batch.size, F = assembler_->num_fields(), D = assembler_->dim();
  probs->resize(B);
  if (B == 0) return absl::OkStatus();
  c.dedup.Run(batch);
  const auto& keys = c.dedup.tables();
  c.row_ptrs.clear();
  for (size_t t = 0; t < keys.size(); ++t) {
    const Table& table = tables_[t];
    const std::vector<uint64_t>& unique = keys[t].unique_keys;
    c.rows[t].resize(unique.size() * table.dim);
    for (size_t i = 0; i < unique.size(); ++i) table.Lookup(unique[i], &c.rows[t][i * table.dim]);
    c.row_ptrs.push_back(c.rows[t].data());
  }
  const bool linear = c.model->NeedsLinear();
  c.emb.resize(static_cast<size_t>(B) * F * D);
  c.linear.resize(linear ? static_cast<size_t>(B) * F : 0);
  c.assembler.Assemble(batch, c.dedup, c.row_ptrs, c.emb.data(), c.linear.data());
  c.logits.resize(B);
  nn::ModelInput in{
      B, F, D, c.emb.data(), linear ? c.linear.data() : nullptr, c.assembler.sequences()};
  c.model->Forward(in, /*training=*/false, c.logits.data());
  nn::SigmoidProbabilities(c.logits, *probs);
  return absl::OkStatus();
}

absl::Status Predictor::Predict(const Batch& batch, std::vector<float>* probs) const {
  RETURN_IF_ERROR(CheckBatch(batch, config().data()));
  ASSIGN_OR_RETURN(Lease lease, Acquire());
  return Score(*lease, batch, probs);
}

absl::StatusOr<std::vector<float>> Predictor::PredictLines(
    const std::vector<std::string>& lines) const {
  ASSIGN_OR_RETURN(Lease lease, Acquire());
  Context& c = *lease;
  std::unique_ptr<SampleParser> csv_parser;
  SampleParser* parser = c.parser.get();
  size_t first = 0;
  if (parser == nullptr) {  // CSV: each call brings its own header
    if (lines.empty()) return absl::InvalidArgumentError("line 1: expected the CSV header");
    ASSIGN_OR_RETURN(csv_parser, SampleParser::Create(config().data()));
    parser = csv_parser.get();
    auto bound = parser->BindHeader(lines[0], "lines");
    if (!bound.ok()) return bound.status();
    first = 1;
  }
  parser->ResetBatch(&c.batch);
  for (size_t i = first; i < lines.size(); ++i) {
    absl::Status s = parser->Parse(lines[i], &c.batch);
    if (!s.ok()) return absl::InvalidArgumentError(absl::StrCat("line ", i + 1, ": ", s.message()));
  }
  std::vector<float> probs;
  RETURN_IF_ERROR(Score(c, c.batch, &probs));
  return probs;
}

}  // namespace ctrps
