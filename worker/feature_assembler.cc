#include "worker/feature_assembler.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/config.h"
#include "common/model_tables.h"

namespace ctrps {

absl::StatusOr<FeatureAssembler> FeatureAssembler::Create(const ExperimentConfig& config) {
  const DataConfig& data = config.data();
  if (data.feature_size() == 0) return absl::InvalidArgumentError("the config has no data.feature");
  FeatureAssembler a;
  a.linear_ = ModelNeedsLinear(config.model().type());
  // The table layout exactly as the de-duplicator groups fields.
  KeyDedup probe(data);
  Batch empty;
  empty.Reset(data.feature_size(), 1);
  probe.Run(empty);
  a.fields_.resize(data.feature_size());
  for (size_t t = 0; t < probe.tables().size(); ++t) {
    const TableKeys& tk = probe.tables()[t];
    const TableConfig* table = FindTable(config, tk.name);
    if (table == nullptr) return absl::InvalidArgumentError(absl::StrCat("no table \"", tk.name, "\""));
    if (a.dim_ == 0) a.dim_ = table->dim();
    if (table->dim() != a.dim_) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "model %s needs one embedding dim for every field; table \"%s\" has %d, another has %d",
          ModelConfig::Type_Name(config.model().type()), tk.name, table->dim(), a.dim_));
    }
    a.table_names_.push_back(tk.name);
    a.server_dims_.push_back(ServerDim(config, table->dim()));
    for (size_t s = 0; s < tk.fields.size(); ++s) {
      const FeatureConfig& f = data.feature(tk.fields[s]);
      a.fields_[tk.fields[s]] = {static_cast<int>(t), static_cast<int>(s),
                                 f.kind() == FeatureConfig::NUMERIC, f.pooling() == FeatureConfig::MEAN};
    }
  }
  return a;
}

float FeatureAssembler::Scale(const Field& f, const FieldBatch& fb, int b) const {
  float scale = f.numeric ? fb.values[b] : 1.0f;
  const int n = fb.offsets[b + 1] - fb.offsets[b];
  if (f.mean && n > 1) scale /= static_cast<float>(n);
  return scale;
}

void FeatureAssembler::Assemble(const Batch& batch, const KeyDedup& dedup,
                                const std::vector<const float*>& rows, float* emb, float* linear) {
  const int B = batch.size, F = num_fields(), D = dim_;
  std::fill(emb, emb + static_cast<size_t>(B) * F * D, 0.0f);
  if (linear_) std::fill(linear, linear + static_cast<size_t>(B) * F, 0.0f);
  const auto& tables = dedup.tables();
  for (int f = 0; f < F; ++f) {
    const Field& spec = fields_[f];
    const TableKeys& tk = tables[spec.table];
    const int sd = server_dims_[spec.table];
    const FieldBatch& fb = batch.fields[tk.fields[spec.slot]];
    scratch_.resize(fb.keys.size() * sd);
    GatherRows(tk, spec.slot, rows[spec.table], sd, scratch_.data());
    for (int b = 0; b < B; ++b) {
      const int begin = fb.offsets[b], end = fb.offsets[b + 1];
      if (begin == end) continue;
      const float scale = Scale(spec, fb, b);
      float* dst = emb + (static_cast<size_t>(b) * F + f) * D;
      float lin = 0;
      for (int k = begin; k < end; ++k) {
        const float* row = &scratch_[static_cast<size_t>(k) * sd];
        for (int d = 0; d < D; ++d) dst[d] += scale * row[d];
        if (linear_) lin += scale * row[D];
      }
      if (linear_) linear[static_cast<size_t>(b) * F + f] = lin;
    }
  }
}

void FeatureAssembler::Scatter(const Batch& batch, const KeyDedup& dedup, const float* d_emb,
                               const float* d_linear, float scale, std::vector<std::vector<float>>* grads) {
  const int B = batch.size, F = num_fields(), D = dim_;
  const auto& tables = dedup.tables();
  grads->resize(tables.size());
  for (size_t t = 0; t < tables.size(); ++t) {
    (*grads)[t].assign(tables[t].unique_keys.size() * server_dims_[t], 0.0f);
  }
  for (int f = 0; f < F; ++f) {
    const Field& spec = fields_[f];
    const TableKeys& tk = tables[spec.table];
    const int sd = server_dims_[spec.table];
    const FieldBatch& fb = batch.fields[tk.fields[spec.slot]];
    scratch_.resize(fb.keys.size() * sd);
    for (int b = 0; b < B; ++b) {
      const int begin = fb.offsets[b], end = fb.offsets[b + 1];
      const float s = scale * Scale(spec, fb, b);
      const float* g = d_emb + (static_cast<size_t>(b) * F + f) * D;
      for (int k = begin; k < end; ++k) {
        float* dst = &scratch_[static_cast<size_t>(k) * sd];
        for (int d = 0; d < D; ++d) dst[d] = s * g[d];
        if (linear_) dst[D] = s * d_linear[static_cast<size_t>(b) * F + f];
      }
    }
    AccumulateFieldGradients(tk, spec.slot, scratch_.data(), sd, (*grads)[spec.table].data());
  }
}

}  // namespace ctrps
