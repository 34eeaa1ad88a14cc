// A batch of samples in column form, as the reader produces it and the
// trainer consumes it. Everything is contiguous and reused: clearing a batch
// keeps the capacity of its vectors, so a steady-state loop does not allocate.
#ifndef CTRPS_WORKER_DATA_BATCH_H_
#define CTRPS_WORKER_DATA_BATCH_H_

#include <cstdint>
#include <vector>

namespace ctrps {

// The keys of one configured feature for all samples of a batch.
//
// Sample b's keys are keys[offsets[b] .. offsets[b+1]). Single-valued kinds
// (CATEGORICAL, NUMERIC, BUCKETIZED) have exactly one key per sample (a blank
// value gets the field's "missing" key); MULTI_VALUED and SEQUENCE have 0 to
// max_len keys per sample, oldest first (the last max_len items of the list).
struct FieldBatch {
  std::vector<uint64_t> keys;
  std::vector<int32_t> offsets{0};  // size() + 1 entries, offsets[0] == 0
  std::vector<float> values;        // NUMERIC: one value per sample; else empty

  int size() const { return static_cast<int>(offsets.size()) - 1; }
  int num_keys(int b) const { return offsets[b + 1] - offsets[b]; }
  void Clear() {
    keys.clear();
    offsets.assign(1, 0);
    values.clear();
  }
};

// Where a reader is in its input; a batch carries the position just after
// it. A reader started at a batch's position yields exactly the samples that
// follow that batch (same files, worker sharding, batch size and shuffle
// settings assumed).
struct ReadPosition {
  int32_t epoch = 0;
  // Index into the reader's file list; the number of files means "this
  // epoch's files are done" (the epoch's end comes next).
  int32_t file = 0;
  // Physical lines of `file` already consumed (a CSV header counts as line 1;
  // 0 = the start of the file).
  int64_t line = 0;
  // With a shuffle buffer: lines of the shuffle block that starts at
  // (file, line) already consumed. 0 without shuffling.
  int64_t skip = 0;

  friend bool operator==(const ReadPosition&, const ReadPosition&) = default;
};

struct Batch {
  int size = 0;
  int num_labels = 1;
  std::vector<float> labels;       // size * num_labels, sample-major
  std::vector<FieldBatch> fields;  // one per configured feature, config order
  ReadPosition position;           // position after the last sample of this batch

  float label(int b, int task = 0) const { return labels[b * num_labels + task]; }

  // Empties the batch for `num_fields` fields, keeping allocated capacity.
  void Reset(int num_fields, int labels_per_sample) {
    size = 0;
    num_labels = labels_per_sample;
    labels.clear();
    fields.resize(num_fields);
    for (FieldBatch& f : fields) f.Clear();
  }

  // Drops samples n.. and anything appended after them (used to roll back a
  // partly parsed sample). Requires n <= size.
  void Truncate(int n) {
    size = n;
    labels.resize(static_cast<size_t>(n) * num_labels);
    for (FieldBatch& f : fields) {
      f.offsets.resize(n + 1);
      f.keys.resize(f.offsets[n]);
      if (f.values.size() > static_cast<size_t>(n)) f.values.resize(n);
    }
  }

  // Appends sample `b` of `src`, which must have the same fields and kinds.
  void AppendSample(const Batch& src, int b) {
    labels.insert(labels.end(), src.labels.begin() + b * num_labels,
                  src.labels.begin() + (b + 1) * num_labels);
    for (size_t i = 0; i < fields.size(); ++i) {
      const FieldBatch& from = src.fields[i];
      FieldBatch& to = fields[i];
      to.keys.insert(to.keys.end(), from.keys.begin() + from.offsets[b],
                     from.keys.begin() + from.offsets[b + 1]);
      to.offsets.push_back(static_cast<int32_t>(to.keys.size()));
      if (!from.values.empty()) to.values.push_back(from.values[b]);
    }
    ++size;
  }
};

}  // namespace ctrps

#endif  // CTRPS_WORKER_DATA_BATCH_H_
