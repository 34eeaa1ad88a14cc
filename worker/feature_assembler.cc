#include "worker/feature_assembler.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/config.h"
#include "common/model_tables.h"
#include "glog/logging.h"

namespace ctrps {

absl::StatusOr<FeatureAssembler> FeatureAssembler::Create(const ExperimentConfig& config) {
  const DataConfig& data = config.data();
  if (data.feature_size() == 0) return absl::InvalidArgumentError("the config has no data.feature");
  FeatureAssembler a;
  a.linear_ = GetModelTraits(config.model().type()).needs_linear();
  // The table layout exactly as the de-duplicator groups fields.
  KeyDedup probe(data);
  Batch empty;
  empty.Reset(data.feature_size(), 1);
  probe.Run(empty);
  a.fields_.resize(data.feature_size());
  for (size_t t = 0; t < probe.tables().size(); ++t) {
    const TableKeys& tk = probe.tables()[t];
    const TableConfig* table = FindTable(config, tk.name);
    if (table == nullptr)
      return absl::InvalidArgumentError(absl::StrCat("no table \"", tk.name, "\""));
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
                                 f.kind() == FeatureConfig::NUMERIC,
                                 f.pooling() == FeatureConfig::MEAN};
    }
  }
  if (!GetModelTraits(config.model().type()).sequence()) return a;
  for (int i = 0; i < data.feature_size(); ++i) {
    const FeatureConfig& f = data.feature(i);
    if (f.kind() != FeatureConfig::SEQUENCE) continue;
    int target = -1;
    if (f.has_target()) {
      for (int j = 0; j < data.feature_size(); ++j) {
        if (data.feature(j).name() == f.target()) target = j;
      }
      if (target < 0 || data.feature(target).kind() == FeatureConfig::SEQUENCE) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "feature \"%s\": target \"%s\" is not a non-sequence feature of the config", f.name(),
            f.target()));
      }
    }
    a.fields_[i].sequence = static_cast<int>(a.sequence_specs_.size());
    a.sequence_specs_.push_back({i, target, f.max_len()});
  }
  a.seq_emb_.resize(a.sequence_specs_.size());
  a.seq_lengths_.resize(a.sequence_specs_.size());
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
  sequences_.clear();
  for (int f = 0; f < F; ++f) {
    const Field& spec = fields_[f];
    const TableKeys& tk = tables[spec.table];
    const int sd = server_dims_[spec.table];
    const FieldBatch& fb = batch.fields[tk.fields[spec.slot]];
    scratch_.resize(fb.keys.size() * sd);
    GatherRows(tk, spec.slot, rows[spec.table], sd, scratch_.data());
    if (spec.sequence >= 0) {
      AssembleSequence(spec.sequence, fb, sd);
      continue;
    }
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
  for (size_t i = 0; i < sequence_specs_.size(); ++i) {
    const nn::SequenceSpec& s = sequence_specs_[i];
    sequences_.push_back(
        {s.field, s.target_field, s.max_len, seq_emb_[i].data(), seq_lengths_[i].data()});
  }
}

// The reader already keeps at most max_len items (the newest); should a
// field hold more, the oldest are dropped here the same way.
void FeatureAssembler::AssembleSequence(int i, const FieldBatch& fb, int sd) {
  const int B = fb.size(), L = sequence_specs_[i].max_len, D = dim_;
  std::vector<float>& out = seq_emb_[i];
  std::vector<int32_t>& lengths = seq_lengths_[i];
  out.assign(static_cast<size_t>(B) * L * D, 0.0f);
  lengths.resize(B);
  for (int b = 0; b < B; ++b) {
    const int n = std::min(fb.num_keys(b), L);
    const int first = fb.offsets[b + 1] - n;
    lengths[b] = n;
    float* dst = out.data() + static_cast<size_t>(b) * L * D;
    for (int l = 0; l < n; ++l) {
      std::copy_n(&scratch_[static_cast<size_t>(first + l) * sd], D,
                  dst + static_cast<size_t>(l) * D);
    }
  }
}

void FeatureAssembler::Scatter(const Batch& batch, const KeyDedup& dedup, const float* d_emb,
                               const float* d_linear, const std::vector<float*>& d_seq_emb,
                               float scale, std::vector<std::vector<float>>* grads) {
  CHECK_EQ(d_seq_emb.size(), sequence_specs_.size()) << "one d_seq_emb per sequence_specs() entry";
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
    if (spec.sequence >= 0) {
      // Per occurrence: the row's gradient at its position; occurrences the
      // assembler dropped (beyond max_len) and the linear column get zero.
      const int L = sequence_specs_[spec.sequence].max_len;
      const float* g = d_seq_emb[spec.sequence];
      std::fill(scratch_.begin(), scratch_.end(), 0.0f);
      for (int b = 0; b < B; ++b) {
        const int n = std::min(fb.num_keys(b), L);
        const int first = fb.offsets[b + 1] - n;
        const float* src = g + static_cast<size_t>(b) * L * D;
        for (int l = 0; l < n; ++l) {
          float* dst = &scratch_[static_cast<size_t>(first + l) * sd];
          for (int d = 0; d < D; ++d) dst[d] = scale * src[static_cast<size_t>(l) * D + d];
        }
      }
      AccumulateFieldGradients(tk, spec.slot, scratch_.data(), sd, (*grads)[spec.table].data());
      continue;
    }
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
