// Synthetic Criteo-shaped click data with planted structure, so that model
// quality can be judged against a known optimum (the "oracle" AUC of the true
// click probabilities).
//
// Each row: label, I1..I13 (non-negative counts, occasionally -1, some blank),
// C1..C26 (categorical values as 8 hex digits, some blank), tab-separated:
// the CRITEO_TSV format. The click probability of a row is
//
//   p = sigmoid(bias + sum_f w_f(C_f)                        per-value effects
//               + s * sum_{(a,b) in P} <u_a(C_a), u_b(C_b)> / sqrt(|P| / k)
//               + g(I1..I13))                                  nonlinear numerics
//
// P, the interacting field pairs, is set by `interactions`: kClique (the
// default) takes every pair among the 23 fields of kPairs, which is exactly
// a factorization machine's interaction term over those fields (one factor
// vector per value, shared by all its pairs), so an FM-family model is
// well specified and the gap to the oracle measures training; kPairs takes
// only 15 chosen pairs (a sparse pair graph, which no FM of small dim can
// represent with one vector per value: its interactions must come from an
// MLP or field-aware factors).
//
// where w_f(v) ~ N(0, sigma_f^2) and u_f(v) (k uniform components of mean 0,
// variance 1/k) are hidden per-value
// parameters (k = factor_dim), derived by hashing (seed, field, value) so they
// need no memory; s = interaction_strength; g is a fixed smooth nonlinear
// function of log1p(I) (sines, squares and a product); a blank value has its
// own effects. Categorical values are Zipf-distributed (exponent
// zipf_exponent) over cardinalities that follow the real Criteo data's,
// capped at max_cardinality. The bias is chosen so that the mean of p is
// target_ctr. Everything is a pure function of the options (the seed).
#ifndef CTRPS_WORKER_DATA_CTR_DATAGEN_H_
#define CTRPS_WORKER_DATA_CTR_DATAGEN_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace ctrps {

inline constexpr int kCriteoIntColumns = 13;
inline constexpr int kCriteoCatColumns = 26;

enum class Interactions { kClique, kPairs };

struct DatagenOptions {
  int64_t rows = 1000000;
  Interactions interactions = Interactions::kClique;
  uint64_t seed = 2024;
  double interaction_strength = 1.0;
  int64_t max_cardinality = 1000000;
  double target_ctr = 0.22;
  int factor_dim = 8;
  double zipf_exponent = 1.05;
  // Fractions of the rows (in order) for the files train, valid, test; one
  // entry writes a single file. Normalised to sum 1.
  std::vector<double> splits = {0.8, 0.1, 0.1};
};

struct CtrRow {
  static constexpr int64_t kMissing = INT64_MIN;
  int label = 0;
  float prob = 0;                   // the true click probability
  int64_t ints[kCriteoIntColumns];  // kMissing = blank
  int64_t cats[kCriteoCatColumns];  // value ids 0..cardinality-1 (0 most frequent); -1 = blank
};

class CtrGenerator {
 public:
  // Builds the Zipf tables and calibrates the bias. InvalidArgument for
  // options out of range (rows < 0, max_cardinality outside [2, 2^31),
  // target_ctr outside (0, 1), factor_dim outside [1, 64], ...).
  static absl::StatusOr<std::unique_ptr<CtrGenerator>> Create(const DatagenOptions& options);

  // The next row of the stream.
  void Next(CtrRow* row);

  // Appends `row` as one CRITEO_TSV line, newline included.
  void AppendTsv(const CtrRow& row, std::string* out) const;

  // The logit of `row` without the bias (a pure function of the row's values).
  double Logit(const CtrRow& row) const;

  double bias() const { return bias_; }
  int64_t cardinality(int field) const { return fields_[field].cardinality; }
  // The hex string written for value id `value` of categorical field `field`.
  std::string HexValue(int field, int64_t value) const;

 private:
  struct CatField {
    int64_t cardinality;
    double missing_rate;
    double sigma;  // std of per-value effects
    uint32_t salt;
    std::vector<float> alias_prob;  // Vose alias tables for the Zipf draw
    std::vector<uint32_t> alias;
  };
  explicit CtrGenerator(const DatagenOptions& options);
  uint64_t NextRandom();
  double Uniform() { return (NextRandom() >> 11) * 0x1.0p-53; }
  double Gaussian();

  DatagenOptions options_;
  std::vector<CatField> fields_;
  std::vector<int> pair_fields_;  // fields that appear in a pair
  // sqrt(k / |P|): the sum of |P| dot products (variance 1/k each) times
  // this has variance 1 (then times s).
  double interaction_norm_ = 0;
  double bias_ = 0;
  uint64_t rng_[4];
};

struct DatagenFileReport {
  std::string path;  // the data file; the probabilities are in path + ".prob"
  int64_t rows = 0;
  double ctr = 0;         // mean label
  double mean_prob = 0;   // mean true probability
  double oracle_auc = 0;  // AUC of the true probabilities against the labels
};

struct DatagenReport {
  double bias = 0;
  std::vector<DatagenFileReport> files;
};

// Writes options.rows rows to `out` (splits.size() == 1) or to
// `<out>.train.tsv`, `<out>.valid.tsv`, `<out>.test.tsv` (the first rows to
// train, and so on), each with a side file `<file>.prob` holding the true
// click probability of each row, one per line ("%.6f"). Creates the parent
// directory. `progress(rows_done)` is called about every million rows.
// Errors: InvalidArgument for bad options, the OS error naming the path for
// I/O.
absl::StatusOr<DatagenReport> WriteCtrData(const DatagenOptions& options, const std::string& out,
                                           const std::function<void(int64_t)>& progress = nullptr);

// One generated row: `next` appends its text (with its newline) and returns
// its true click probability and label.
struct GeneratedRow {
  double prob = 0;
  int label = 0;
};

// Where the generators write: one file per split fraction (1 to 3, named
// OUT.train/.valid/.test.EXT, or OUT itself for one), fractions normalised
// by their sum. PlanSplits checks the fractions and the output path
// (InvalidArgument naming what is wrong) before anything is generated.
struct SplitPlan {
  std::vector<std::string> paths;
  std::vector<double> splits;
  double total = 0;  // sum of splits
};
absl::StatusOr<SplitPlan> PlanSplits(const std::vector<double>& splits, const std::string& out,
                                     const std::string& extension);

// The file-writing part shared by the generators: `rows` rows over the plan's
// files in its proportions, each file starting with `header` (may be empty)
// and with a `.prob` side file; each file's CTR, mean probability and oracle
// AUC are reported. Creates the output directory.
// `progress(rows_done)` is called every `progress_every` rows.
absl::StatusOr<std::vector<DatagenFileReport>> WriteSplits(
    const SplitPlan& plan, int64_t rows, const std::string& header,
    const std::function<GeneratedRow(std::string*)>& next,
    const std::function<void(int64_t)>& progress, int64_t progress_every);

// Exact ROC AUC of `scores` against 0/1 `labels` (ties count one half).
// NaN when there are no positives or no negatives.
double ExactAuc(const std::vector<float>& scores, const std::vector<uint8_t>& labels);

}  // namespace ctrps

#endif  // CTRPS_WORKER_DATA_CTR_DATAGEN_H_
