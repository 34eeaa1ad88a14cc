// Synthetic user-behaviour data with planted interests, for the sequence
// models (MEANPOOL, DIN, SDIM): the click depends on how close the target
// item is to the user's closest interest, which only the history reveals, so
// target attention helps and the oracle AUC of the true probabilities is
// known.
//
// Hidden structure (a pure function of the options):
//   - `categories` cluster centers c_j, random unit vectors in R^k
//     (k = factor_dim);
//   - item i has category j = i % categories and the unit vector
//     v_i = normalise(c_j + 0.75 g_i), g_i ~ N(0, I / k) (cos(v_i, c_j) ~ 0.8),
//     and a bias b_i ~ N(0, item_bias_std^2);
//   - user u has n_u in [min_interests, max_interests] interests: distinct
//     categories J_u (drawn from a hash of (seed, u), so users need no memory).
// A row draws a user uniformly, a history of length uniform in
// [min_history, max_history] (each item: with probability history_noise a
// random item, else an item of one of the user's interest categories, the
// interest uniform), and a target: with probability near_target_fraction an
// item of one of the user's interests, else a random item. Items are drawn
// within a category with a skew towards its first members (rank =
// floor(n * u^2), density ~ 1/sqrt(rank)). Then
//
//   p = sigmoid(interest_strength * max_{j in J_u} cos(v_target, c_j) + b_target + bias)
//
// with the bias calibrated so that the mean of p is target_ctr.
//
// Format: CSV with the header `label,user,item,cate,hist_items,hist_cates`;
// the lists are '^'-separated item (category) ids, oldest first (most recent
// last), and match position by position. Ids are decimal numbers. Read it
// with features user, item, cate (CATEGORICAL) and hist_items, hist_cates
// (SEQUENCE, sharing table and hash_as with item and cate).
#ifndef CTRPS_WORKER_DATA_SEQUENCE_DATAGEN_H_
#define CTRPS_WORKER_DATA_SEQUENCE_DATAGEN_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/data/ctr_datagen.h"

namespace ctrps {

struct SequenceDatagenOptions {
  int64_t rows = 1000000;
  uint64_t seed = 2024;
  int64_t users = 100000;
  int64_t items = 100000;
  int categories = 100;
  int min_interests = 2;
  int max_interests = 4;
  int min_history = 50;
  int max_history = 500;
  int factor_dim = 8;
  double interest_strength = 5.0;
  double item_bias_std = 0.5;
  double near_target_fraction = 0.5;
  double history_noise = 0.1;
  double target_ctr = 0.22;
  // As DatagenOptions::splits.
  std::vector<double> splits = {0.8, 0.1, 0.1};
};

struct SequenceRow {
  int label = 0;
  float prob = 0;  // the true click probability
  int64_t user = 0;
  int64_t item = 0;
  std::vector<int32_t> history;  // item ids, oldest first
};

class SequenceGenerator {
 public:
  static constexpr char kCsvHeader[] = "label,user,item,cate,hist_items,hist_cates";

  // Builds the item table and calibrates the bias. InvalidArgument for
  // options out of range (rows < 0, items outside [categories, 2^31),
  // categories < 1, interests outside [1, categories], min_history > max_history,
  // factor_dim outside [1, 64], fractions outside [0, 1], ...).
  static absl::StatusOr<std::unique_ptr<SequenceGenerator>> Create(
      const SequenceDatagenOptions& options);

  // The next row of the stream; reuses row->history's capacity.
  void Next(SequenceRow* row);

  // Appends `row` as one CSV line (no header), newline included.
  void AppendCsv(const SequenceRow& row, std::string* out) const;

  int category(int64_t item) const { return static_cast<int>(item % options_.categories); }
  double bias() const { return bias_; }
  // The user's interest categories (for tests).
  std::vector<int> Interests(int64_t user) const;
  // max_j cos(v_item, c_j) over the user's interests.
  double Affinity(int64_t user, int64_t item) const;

 private:
  explicit SequenceGenerator(const SequenceDatagenOptions& options);
  uint64_t NextRandom();
  double Uniform() { return (NextRandom() >> 11) * 0x1.0p-53; }
  int InterestsOf(int64_t user, int* cats) const;
  // An item of category `cat`, from 64 random bits.
  int64_t ItemOf(int cat, uint64_t r) const;
  int64_t RandomItem(uint64_t r) const {
    return ItemOf(static_cast<int>(r % options_.categories), r);
  }
  double Logit(int64_t user, int64_t item) const;

  SequenceDatagenOptions options_;
  std::vector<float> centers_;  // [categories, k]
  std::vector<float> vectors_;  // [items, k]
  std::vector<float> item_bias_;
  double bias_ = 0;
  uint64_t rng_[4];
};

// Writes options.rows rows as WriteCtrData does (one file, or
// `<out>.train.csv`, `<out>.valid.csv`, `<out>.test.csv`, each with a CSV
// header and a `<file>.prob` side file of true probabilities, one per data
// line). Errors: InvalidArgument for bad options, the OS error naming the
// path for I/O.
absl::StatusOr<DatagenReport> WriteSequenceData(
    const SequenceDatagenOptions& options, const std::string& out,
    const std::function<void(int64_t)>& progress = nullptr);

}  // namespace ctrps

#endif  // CTRPS_WORKER_DATA_SEQUENCE_DATAGEN_H_
