#include "worker/data/key_dedup.h"

#include <algorithm>
#include <cstring>

namespace ctrps {
namespace {

constexpr uint64_t kGolden = 0x9e3779b97f4a7c15ULL;

}  // namespace

void KeyIndexMap::Clear(size_t expected) {
  size_ = 0;
  // Load factor at most 1/2 for `expected` keys.
  size_t want = 16;
  while (want < 2 * expected) want <<= 1;
  if (want > slots_.size()) {
    slots_.assign(want, Slot{0, 0, 0});
    mask_ = want - 1;
    shift_ = 64 - __builtin_ctzll(want);
    generation_ = 1;
    return;
  }
  if (++generation_ == 0) {  // wrapped: old stamps could look current
    std::fill(slots_.begin(), slots_.end(), Slot{0, 0, 0});
    generation_ = 1;
  }
}

void KeyIndexMap::Grow() {
  std::vector<Slot> old;
  old.swap(slots_);
  const uint32_t old_generation = generation_;
  slots_.assign(old.size() * 2, Slot{0, 0, 0});
  mask_ = slots_.size() - 1;
  shift_ = 64 - __builtin_ctzll(slots_.size());
  generation_ = 1;
  for (const Slot& s : old) {
    if (s.generation != old_generation) continue;
    uint64_t i = (s.key * kGolden) >> shift_;
    while (slots_[i].generation == generation_) i = (i + 1) & mask_;
    slots_[i] = Slot{s.key, s.value, generation_};
  }
}

int32_t KeyIndexMap::FindOrInsert(uint64_t key, bool* inserted) {
  if (slots_.empty()) Clear(0);
  if (2 * static_cast<size_t>(size_ + 1) > slots_.size()) Grow();
  uint64_t i = (key * kGolden) >> shift_;
  while (true) {
    Slot& s = slots_[i];
    if (s.generation != generation_) {
      s = Slot{key, size_, generation_};
      *inserted = true;
      return size_++;
    }
    if (s.key == key) {
      *inserted = false;
      return s.value;
    }
    i = (i + 1) & mask_;
  }
}

KeyDedup::KeyDedup(const DataConfig& data) {
  for (int f = 0; f < data.feature_size(); ++f) {
    const FeatureConfig& feature = data.feature(f);
    const std::string& table = feature.table().empty() ? feature.name() : feature.table();
    auto it = std::find_if(tables_.begin(), tables_.end(),
                           [&](const TableKeys& t) { return t.name == table; });
    if (it == tables_.end()) {
      tables_.emplace_back();
      tables_.back().name = table;
      it = tables_.end() - 1;
    }
    it->fields.push_back(f);
  }
}

void KeyDedup::Run(const Batch& batch) {
  for (TableKeys& t : tables_) {
    size_t total = 0;
    for (int f : t.fields) total += batch.fields[f].keys.size();
    t.field_begin.clear();
    t.unique_keys.clear();
    t.counts.clear();
    t.index.resize(total);
    map_.Clear(total);
    int32_t* out = t.index.data();
    int32_t pos = 0;
    for (int f : t.fields) {
      t.field_begin.push_back(pos);
      for (uint64_t key : batch.fields[f].keys) {
        bool inserted;
        const int32_t u = map_.FindOrInsert(key, &inserted);
        if (inserted) {
          t.unique_keys.push_back(key);
          t.counts.push_back(1);
        } else {
          ++t.counts[u];
        }
        out[pos++] = u;
      }
    }
    t.field_begin.push_back(pos);
  }
}

void SumGradients(const TableKeys& table, const float* occurrence_grads, int dim,
                  float* unique_grads) {
  std::memset(unique_grads, 0, sizeof(float) * table.unique_keys.size() * dim);
  const size_t n = table.index.size();
  for (size_t o = 0; o < n; ++o) {
    float* dst = unique_grads + static_cast<size_t>(table.index[o]) * dim;
    const float* src = occurrence_grads + o * dim;
    for (int d = 0; d < dim; ++d) dst[d] += src[d];
  }
}

void AccumulateFieldGradients(const TableKeys& table, int slot, const float* field_grads, int dim,
                              float* unique_grads) {
  const int32_t begin = table.field_begin[slot];
  const int32_t end = table.field_begin[slot + 1];
  for (int32_t o = begin; o < end; ++o) {
    float* dst = unique_grads + static_cast<size_t>(table.index[o]) * dim;
    const float* src = field_grads + static_cast<size_t>(o - begin) * dim;
    for (int d = 0; d < dim; ++d) dst[d] += src[d];
  }
}

void GatherRows(const TableKeys& table, int slot, const float* unique_rows, int dim,
                float* field_rows) {
  const int32_t begin = table.field_begin[slot];
  const int32_t end = table.field_begin[slot + 1];
  for (int32_t o = begin; o < end; ++o) {
    std::memcpy(field_rows + static_cast<size_t>(o - begin) * dim,
                unique_rows + static_cast<size_t>(table.index[o]) * dim, sizeof(float) * dim);
  }
}

}  // namespace ctrps
