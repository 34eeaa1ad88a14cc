#include "worker/data/sequence_datagen.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/hash.h"
#include "common/status.h"

namespace ctrps {
namespace {

constexpr int kCalibrationRows = 20000;
constexpr int kMaxInterests = 64;
constexpr uint64_t kGolden = 0x9e3779b97f4a7c15ULL;
// cos(v_i, c_j) ~ 1 / sqrt(1 + kItemSpread^2) = 0.8.
constexpr double kItemSpread = 0.75;

inline double Sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// N(0, 1) from two uniforms (Box-Muller, one output).
inline double Gaussian(uint64_t a, uint64_t b) {
  const double u1 = ((a >> 11) + 1) * 0x1.0p-53;  // (0, 1]
  const double u2 = (b >> 11) * 0x1.0p-53;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

// A uniformly random unit vector in R^k (normalised N(0, I)) from a stream.
void RandomUnit(uint64_t* state, int k, float* out) {
  double norm = 0;
  for (int j = 0; j < k; ++j) {
    const uint64_t a = Mix64(*state += kGolden), b = Mix64(*state += kGolden);
    out[j] = static_cast<float>(Gaussian(a, b));
    norm += double{out[j]} * out[j];
  }
  const float inv = static_cast<float>(1.0 / std::sqrt(std::max(norm, 1e-30)));
  for (int j = 0; j < k; ++j) out[j] *= inv;
}

void AppendInt(int64_t v, std::string* out) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, end - buf);
}

}  // namespace

absl::StatusOr<std::unique_ptr<SequenceGenerator>> SequenceGenerator::Create(
    const SequenceDatagenOptions& o) {
  auto bad = [](const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat("datagen (sequence): ", what));
  };
  auto fraction = [](double v) { return v >= 0 && v <= 1; };
  if (o.rows < 0) return bad(absl::StrCat("rows must be >= 0, got ", o.rows));
  if (o.users < 1) return bad(absl::StrCat("users must be >= 1, got ", o.users));
  if (o.categories < 1 || o.categories >= (1 << 30)) {
    return bad(absl::StrCat("categories must be in [1, 2^30), got ", o.categories));
  }
  if (o.items < o.categories || o.items >= (int64_t{1} << 31)) {
    return bad(
        absl::StrCat("items must be in [categories (", o.categories, "), 2^31), got ", o.items));
  }
  if (o.min_interests < 1 || o.min_interests > o.max_interests ||
      o.max_interests > std::min(o.categories, kMaxInterests)) {
    return bad(absl::StrCat("interests per user must satisfy 1 <= min_interests (", o.min_interests,
                            ") <= max_interests (", o.max_interests, ") <= min(categories, ",
                            kMaxInterests, ")"));
  }
  if (o.min_history < 0 || o.min_history > o.max_history || o.max_history > (1 << 24)) {
    return bad(absl::StrCat("history lengths must satisfy 0 <= min_history (", o.min_history,
                            ") <= max_history (", o.max_history, ") <= 2^24"));
  }
  if (o.factor_dim < 1 || o.factor_dim > 64) {
    return bad(absl::StrCat("factor_dim must be in [1, 64], got ", o.factor_dim));
  }
  if (!(o.target_ctr > 0 && o.target_ctr < 1)) {
    return bad(absl::StrCat("target_ctr must be in (0, 1), got ", o.target_ctr));
  }
  if (!fraction(o.near_target_fraction) || !fraction(o.history_noise)) {
    return bad("near_target_fraction and history_noise must be in [0, 1]");
  }
  if (!std::isfinite(o.interest_strength) || !(o.item_bias_std >= 0) ||
      !std::isfinite(o.item_bias_std)) {
    return bad("interest_strength must be finite and item_bias_std >= 0");
  }
  std::unique_ptr<SequenceGenerator> g(new SequenceGenerator(o));

  // Bias: bisection on the mean probability of a calibration sample drawn
  // from its own stream (as the Criteo generator does).
  std::vector<double> logits(kCalibrationRows);
  for (double& z : logits) {
    const int64_t user =
        static_cast<int64_t>((static_cast<unsigned __int128>(g->NextRandom()) * o.users) >> 64);
    int cats[kMaxInterests];
    const int n = g->InterestsOf(user, cats);
    const uint64_t r = g->NextRandom();
    const int64_t item = g->Uniform() < o.near_target_fraction
                             ? g->ItemOf(cats[((r & 0xffffffffULL) * n) >> 32], r)
                             : g->RandomItem(r);
    z = g->Logit(user, item);
  }
  double lo = -40, hi = 40;
  for (int it = 0; it < 100; ++it) {
    const double mid = 0.5 * (lo + hi);
    double mean = 0;
    for (double z : logits) mean += Sigmoid(mid + z);
    mean /= logits.size();
    (mean < o.target_ctr ? lo : hi) = mid;
  }
  g->bias_ = 0.5 * (lo + hi);

  uint64_t s = Mix64(o.seed ^ 0x5e9d47a5ULL);
  for (uint64_t& r : g->rng_) r = s = Mix64(s + kGolden);
  return g;
}

SequenceGenerator::SequenceGenerator(const SequenceDatagenOptions& options) : options_(options) {
  const int k = options.factor_dim;
  const int64_t cats = options.categories, items = options.items;
  centers_.resize(cats * k);
  uint64_t state = Mix64(options.seed ^ 0xce47e25ULL);
  for (int64_t j = 0; j < cats; ++j) RandomUnit(&state, k, centers_.data() + j * k);
  vectors_.resize(items * k);
  item_bias_.resize(items);
  std::vector<float> noise(k);
  const double scale = kItemSpread / std::sqrt(static_cast<double>(k));
  for (int64_t i = 0; i < items; ++i) {
    const float* c = centers_.data() + (i % cats) * k;
    float* v = vectors_.data() + i * k;
    double norm = 0;
    for (int j = 0; j < k; ++j) {
      const uint64_t a = Mix64(state += kGolden), b = Mix64(state += kGolden);
      v[j] = static_cast<float>(c[j] + scale * Gaussian(a, b));
      norm += double{v[j]} * v[j];
    }
    const float inv = static_cast<float>(1.0 / std::sqrt(std::max(norm, 1e-30)));
    for (int j = 0; j < k; ++j) v[j] *= inv;
    const uint64_t a = Mix64(state += kGolden), b = Mix64(state += kGolden);
    item_bias_[i] = static_cast<float>(options.item_bias_std * Gaussian(a, b));
  }
  // The calibration stream; Create() reseeds for the data stream.
  uint64_t s = Mix64(options.seed ^ 0xca11b7a7e5ULL);
  for (uint64_t& r : rng_) r = s = Mix64(s + kGolden);
}

uint64_t SequenceGenerator::NextRandom() {  // xoshiro256**
  const uint64_t result = std::rotl(rng_[1] * 5, 7) * 9;
  const uint64_t t = rng_[1] << 17;
  rng_[2] ^= rng_[0];
  rng_[3] ^= rng_[1];
  rng_[1] ^= rng_[2];
  rng_[0] ^= rng_[3];
  rng_[2] ^= t;
  rng_[3] = std::rotl(rng_[3], 45);
  return result;
}

int SequenceGenerator::InterestsOf(int64_t user, int* cats) const {
  uint64_t state = Mix64(options_.seed ^ 0x1f7e7e57ULL ^ Mix64(static_cast<uint64_t>(user)));
  const int span = options_.max_interests - options_.min_interests + 1;
  const int n = options_.min_interests + static_cast<int>(Mix64(state += kGolden) % span);
  for (int i = 0; i < n;) {
    const int c = static_cast<int>(Mix64(state += kGolden) % options_.categories);
    if (std::find(cats, cats + i, c) == cats + i) cats[i++] = c;
  }
  return n;
}

std::vector<int> SequenceGenerator::Interests(int64_t user) const {
  int cats[kMaxInterests];
  const int n = InterestsOf(user, cats);
  return std::vector<int>(cats, cats + n);
}

int64_t SequenceGenerator::ItemOf(int cat, uint64_t r) const {
  const int64_t c = options_.categories;
  const int64_t count = (options_.items - 1 - cat) / c + 1;
  const double u = static_cast<double>(r >> 32) * 0x1.0p-32;
  const int64_t rank = std::min(count - 1, static_cast<int64_t>(count * u * u));
  return cat + c * rank;
}

double SequenceGenerator::Affinity(int64_t user, int64_t item) const {
  const int k = options_.factor_dim;
  int cats[kMaxInterests];
  const int n = InterestsOf(user, cats);
  const float* v = vectors_.data() + item * k;
  double best = -2;
  for (int i = 0; i < n; ++i) {
    const float* c = centers_.data() + static_cast<int64_t>(cats[i]) * k;
    double dot = 0;
    for (int j = 0; j < k; ++j) dot += double{v[j]} * c[j];
    best = std::max(best, dot);
  }
  return best;
}

double SequenceGenerator::Logit(int64_t user, int64_t item) const {
  return options_.interest_strength * Affinity(user, item) + item_bias_[item];
}

void SequenceGenerator::Next(SequenceRow* row) {
  const SequenceDatagenOptions& o = options_;
  row->user = static_cast<int64_t>((static_cast<unsigned __int128>(NextRandom()) * o.users) >> 64);
  int cats[kMaxInterests];
  const int n = InterestsOf(row->user, cats);
  const int span = o.max_history - o.min_history + 1;
  const int len = o.min_history + static_cast<int>(NextRandom() % span);
  row->history.resize(len);
  // Low 16 bits: noise or not; next 16: which interest; high 32: the item.
  const uint64_t noise = static_cast<uint64_t>(o.history_noise * 65536.0);
  for (int l = 0; l < len; ++l) {
    const uint64_t r = NextRandom();
    int64_t item;
    if ((r & 0xffff) < noise) {
      item = RandomItem(NextRandom());
    } else {
      item = ItemOf(cats[(((r >> 16) & 0xffff) * n) >> 16], r);
    }
    row->history[l] = static_cast<int32_t>(item);
  }
  const uint64_t r = NextRandom();
  row->item = Uniform() < o.near_target_fraction ? ItemOf(cats[((r & 0xffffffffULL) * n) >> 32], r)
                                                 : RandomItem(r);
  row->prob = static_cast<float>(Sigmoid(bias_ + Logit(row->user, row->item)));
  row->label = Uniform() < row->prob ? 1 : 0;
}

void SequenceGenerator::AppendCsv(const SequenceRow& row, std::string* out) const {
  out->push_back(row.label ? '1' : '0');
  out->push_back(',');
  AppendInt(row.user, out);
  out->push_back(',');
  AppendInt(row.item, out);
  out->push_back(',');
  AppendInt(category(row.item), out);
  out->push_back(',');
  for (size_t l = 0; l < row.history.size(); ++l) {
    if (l > 0) out->push_back('^');
    AppendInt(row.history[l], out);
  }
  out->push_back(',');
  for (size_t l = 0; l < row.history.size(); ++l) {
    if (l > 0) out->push_back('^');
    AppendInt(category(row.history[l]), out);
  }
  out->push_back('\n');
}

absl::StatusOr<DatagenReport> WriteSequenceData(const SequenceDatagenOptions& options,
                                                const std::string& out,
                                                const std::function<void(int64_t)>& progress) {
  ASSIGN_OR_RETURN(SplitPlan plan, PlanSplits(options.splits, out, "csv"));
  ASSIGN_OR_RETURN(std::unique_ptr<SequenceGenerator> gen, SequenceGenerator::Create(options));

  DatagenReport report;
  report.bias = gen->bias();
  SequenceRow row;
  ASSIGN_OR_RETURN(report.files,
                   WriteSplits(
                       plan, options.rows, absl::StrCat(SequenceGenerator::kCsvHeader, "\n"),
                       [&](std::string* data) {
                         gen->Next(&row);
                         gen->AppendCsv(row, data);
                         return GeneratedRow{row.prob, row.label};
                       },
                       progress, 100000));
  return report;
}

}  // namespace ctrps
