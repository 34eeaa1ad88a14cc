#include "worker/data/ctr_datagen.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/hash.h"
#include "common/status.h"

namespace ctrps {
namespace {

// The real Criteo (Kaggle display advertising) cardinalities and blank rates;
// cardinalities are capped at max_cardinality.
constexpr int64_t kCriteoCardinality[kCriteoCatColumns] = {
    1460, 583,   10131227, 2202608, 305,  24,   12517, 633,     3,  93145, 5683,   8351593, 3194,
    27,   14992, 5461306,  10,      5652, 2173, 4,     7046547, 18, 15,    286181, 105,     142572};
constexpr double kCatMissing[kCriteoCatColumns] = {
    0, 0, 0.034, 0.034, 0, 0.121, 0,    0,     0,     0, 0,     0.034, 0,
    0, 0, 0.034, 0,     0, 0.44,  0.44, 0.034, 0.763, 0, 0.034, 0.44,  0.44};
constexpr double kIntMissing[kCriteoIntColumns] = {0.454,  0,     0.215, 0.217, 0.026, 0.224, 0.043,
                                                   0.0005, 0.043, 0.454, 0.043, 0.765, 0.217};
// I = floor(expm1(mu + sigma * z)), z ~ N(0, 1).
constexpr double kIntMu[kCriteoIntColumns] = {0.8, 1.5, 2.2, 1.8, 7.5, 3.5, 1.5,
                                              2.5, 4.0, 0.4, 1.0, 0.3, 2.0};
constexpr double kIntSigma[kCriteoIntColumns] = {1.0, 1.5, 1.3, 0.9, 2.2, 1.8, 1.3,
                                                 1.0, 1.5, 0.5, 0.8, 0.7, 1.0};
// Categorical field pairs (0-based: 0 = C1) that interact through hidden factors.
constexpr int kPairs[][2] = {{0, 1},   {0, 13},  {1, 4},   {2, 5},   {3, 10},
                             {4, 6},   {6, 7},   {7, 12},  {9, 14},  {11, 16},
                             {13, 17}, {15, 23}, {18, 19}, {21, 24}, {23, 25}};
constexpr int kNumPairs = sizeof(kPairs) / sizeof(kPairs[0]);
constexpr int kCalibrationRows = 20000;
constexpr uint64_t kGolden = 0x9e3779b97f4a7c15ULL;
constexpr size_t kFlushBytes = 4 << 20;

// Approximately N(0, 1) from 64 random bits (Irwin-Hall with 4 terms).
inline double BitsToGaussian(uint64_t h) {
  const double s =
      static_cast<double>((h & 0xffff) + ((h >> 16) & 0xffff) + ((h >> 32) & 0xffff) + (h >> 48));
  return (s * (1.0 / 65536.0) - 2.0) * 1.7320508075688772;
}

// A bijection on 32 bits (MurmurHash3's finaliser): distinct ids, distinct hex.
inline uint32_t Permute32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x85ebca6bU;
  x ^= x >> 13;
  x *= 0xc2b2ae35U;
  x ^= x >> 16;
  return x;
}

inline double Sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

void AppendHex8(uint32_t v, std::string* out) {
  static constexpr char kDigits[] = "0123456789abcdef";
  char buf[8];
  for (int i = 7; i >= 0; --i) {
    buf[i] = kDigits[v & 15];
    v >>= 4;
  }
  out->append(buf, 8);
}

void BuildAlias(int64_t n, double exponent, std::vector<float>* prob,
                std::vector<uint32_t>* alias) {
  std::vector<double> p(n);
  double total = 0;
  for (int64_t i = 0; i < n; ++i) total += p[i] = std::pow(static_cast<double>(i + 1), -exponent);
  for (double& x : p) x *= static_cast<double>(n) / total;
  prob->assign(n, 1.0f);
  alias->resize(n);
  std::vector<uint32_t> small, large;
  for (int64_t i = 0; i < n; ++i) (p[i] < 1 ? small : large).push_back(static_cast<uint32_t>(i));
  while (!small.empty() && !large.empty()) {
    const uint32_t s = small.back();
    small.pop_back();
    const uint32_t l = large.back();
    (*prob)[s] = static_cast<float>(p[s]);
    (*alias)[s] = l;
    p[l] -= 1 - p[s];
    if (p[l] < 1) {
      large.pop_back();
      small.push_back(l);
    }
  }
  for (uint32_t i : small) (*alias)[i] = i;  // rounding leftovers: probability 1
  for (uint32_t i : large) (*alias)[i] = i;
}

absl::Status WriteAll(std::FILE* f, const std::string& data, const std::string& path) {
  if (!data.empty() && std::fwrite(data.data(), 1, data.size(), f) != data.size()) {
    return ErrnoError(path, "write failed");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<CtrGenerator>> CtrGenerator::Create(const DatagenOptions& o) {
  auto bad = [](const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat("datagen: ", what));
  };
  if (o.rows < 0) return bad(absl::StrCat("rows must be >= 0, got ", o.rows));
  if (o.max_cardinality < 2 || o.max_cardinality >= (int64_t{1} << 31)) {
    return bad(absl::StrCat("max_cardinality must be in [2, 2^31), got ", o.max_cardinality));
  }
  if (!(o.target_ctr > 0 && o.target_ctr < 1)) {
    return bad(absl::StrCat("target_ctr must be in (0, 1), got ", o.target_ctr));
  }
  if (o.factor_dim < 1 || o.factor_dim > 64) {
    return bad(absl::StrCat("factor_dim must be in [1, 64], got ", o.factor_dim));
  }
  if (!(o.interaction_strength >= 0) || !std::isfinite(o.interaction_strength)) {
    return bad(absl::StrCat("interaction_strength must be >= 0, got ", o.interaction_strength));
  }
  if (!(o.zipf_exponent > 0 && o.zipf_exponent < 10)) {
    return bad(absl::StrCat("zipf_exponent must be in (0, 10), got ", o.zipf_exponent));
  }
  std::unique_ptr<CtrGenerator> g(new CtrGenerator(o));

  // Bias: bisection on the mean probability of a calibration sample drawn
  // from its own stream, so the data stream does not depend on it.
  std::vector<double> logits(kCalibrationRows);
  CtrRow row;
  for (double& z : logits) {
    g->Next(&row);
    z = g->Logit(row);
  }
  double lo = -30, hi = 30;
  for (int it = 0; it < 100; ++it) {
    const double mid = 0.5 * (lo + hi);
    double mean = 0;
    for (double z : logits) mean += Sigmoid(mid + z);
    mean /= logits.size();
    (mean < o.target_ctr ? lo : hi) = mid;
  }
  g->bias_ = 0.5 * (lo + hi);

  uint64_t s = Mix64(o.seed);
  for (uint64_t& r : g->rng_) r = s = Mix64(s + kGolden);
  return g;
}

CtrGenerator::CtrGenerator(const DatagenOptions& options) : options_(options) {
  fields_.resize(kCriteoCatColumns);
  for (int f = 0; f < kCriteoCatColumns; ++f) {
    CatField& field = fields_[f];
    field.cardinality = std::min(kCriteoCardinality[f], options.max_cardinality);
    field.missing_rate = kCatMissing[f];
    // Field importance varies between 0.1 and 0.4 (golden-ratio pattern).
    const double frac = std::fmod((f + 1) * 0.6180339887498949, 1.0);
    field.sigma = 0.1 + 0.3 * frac;
    field.salt = static_cast<uint32_t>(Mix64(options.seed ^ (0xc0ffeeULL + f)));
    BuildAlias(field.cardinality, options.zipf_exponent, &field.alias_prob, &field.alias);
  }
  for (const auto& p : kPairs) {
    for (int f : p) {
      if (std::find(pair_fields_.begin(), pair_fields_.end(), f) == pair_fields_.end()) {
        pair_fields_.push_back(f);
      }
    }
  }
  const int n = static_cast<int>(pair_fields_.size());
  const int num_pairs = options.interactions == Interactions::kPairs ? kNumPairs : n * (n - 1) / 2;
  interaction_norm_ = std::sqrt(static_cast<double>(options.factor_dim) / num_pairs);
  // The calibration stream; Create() reseeds for the data stream.
  uint64_t s = Mix64(options.seed ^ 0xca11b7a7e5ULL);
  for (uint64_t& r : rng_) r = s = Mix64(s + kGolden);
}

uint64_t CtrGenerator::NextRandom() {  // xoshiro256**
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

double CtrGenerator::Gaussian() { return BitsToGaussian(NextRandom()); }

void CtrGenerator::Next(CtrRow* row) {
  for (int j = 0; j < kCriteoIntColumns; ++j) {
    if (kIntMissing[j] > 0 && Uniform() < kIntMissing[j]) {
      row->ints[j] = CtrRow::kMissing;
      continue;
    }
    row->ints[j] =
        static_cast<int64_t>(std::floor(std::expm1(kIntMu[j] + kIntSigma[j] * Gaussian())));
  }
  for (int f = 0; f < kCriteoCatColumns; ++f) {
    const CatField& field = fields_[f];
    if (field.missing_rate > 0 && Uniform() < field.missing_rate) {
      row->cats[f] = -1;
      continue;
    }
    const uint64_t r = NextRandom();
    const uint32_t i =
        static_cast<uint32_t>(((r >> 32) * static_cast<uint64_t>(field.cardinality)) >> 32);
    const float u = static_cast<float>(r & 0xffffffffULL) * 0x1.0p-32f;
    row->cats[f] = u < field.alias_prob[i] ? i : field.alias[i];
  }
  row->prob = static_cast<float>(Sigmoid(bias_ + Logit(*row)));
  row->label = Uniform() < row->prob ? 1 : 0;
}

double CtrGenerator::Logit(const CtrRow& row) const {
  const uint64_t seed = Mix64(options_.seed ^ 0x5eed5eedULL);
  uint64_t base[kCriteoCatColumns];
  double z = 0;
  for (int f = 0; f < kCriteoCatColumns; ++f) {
    const int64_t v = row.cats[f] < 0 ? fields_[f].cardinality : row.cats[f];  // blank: own id
    base[f] = Mix64(seed ^ Mix64((static_cast<uint64_t>(f + 1) << 40) ^ static_cast<uint64_t>(v)));
    z += fields_[f].sigma * BitsToGaussian(base[f]);
  }

  // Factor components are uniform with variance 1/k, four per hash.
  const int k = options_.factor_dim;
  float factors[kCriteoCatColumns][64];
  const float scale = static_cast<float>(std::sqrt(3.0 / k) / 32768.0);
  for (int f : pair_fields_) {
    for (int c = 0; c < k; c += 4) {
      const uint64_t h = Mix64(base[f] + (c + 1) * kGolden);
      for (int i = 0; i < 4 && c + i < k; ++i) {
        const int bits = static_cast<int>((h >> (16 * i)) & 0xffff) - 32768;
        factors[f][c + i] = scale * (static_cast<float>(bits) + 0.5f);
      }
    }
  }
  double inter = 0;
  if (options_.interactions == Interactions::kPairs) {
    for (const auto& p : kPairs) {
      double dot = 0;
      for (int c = 0; c < k; ++c) dot += factors[p[0]][c] * factors[p[1]][c];
      inter += dot;
    }
  } else {
    // Every pair among the fields: (||sum_f u_f||^2 - sum_f ||u_f||^2) / 2.
    for (int c = 0; c < k; ++c) {
      double sum = 0, sq = 0;
      for (int f : pair_fields_) {
        sum += factors[f][c];
        sq += double{factors[f][c]} * factors[f][c];
      }
      inter += 0.5 * (sum * sum - sq);
    }
  }
  z += options_.interaction_strength * inter * interaction_norm_;

  // Numerics: t_j is the (discretised) standard score of column j; blank = 0.
  double t[kCriteoIntColumns];
  for (int j = 0; j < kCriteoIntColumns; ++j) {
    t[j] = row.ints[j] == CtrRow::kMissing
               ? 0.0
               : (std::log1p(static_cast<double>(std::max<int64_t>(row.ints[j], 0))) - kIntMu[j]) /
                     kIntSigma[j];
  }
  z += 0.45 * std::sin(2.0 * t[0]) + 0.2 * (t[2] * t[2] - 1.0) +
       0.4 * std::tanh(t[4]) * std::tanh(t[5]) + 0.3 * std::tanh(t[8] - 0.5) -
       0.25 * std::fabs(t[10]) + (row.ints[0] == CtrRow::kMissing ? -0.2 : 0.0);
  return z;
}

std::string CtrGenerator::HexValue(int field, int64_t value) const {
  std::string s;
  AppendHex8(Permute32(static_cast<uint32_t>(value) ^ fields_[field].salt), &s);
  return s;
}

void CtrGenerator::AppendTsv(const CtrRow& row, std::string* out) const {
  char buf[24];
  out->push_back(row.label ? '1' : '0');
  for (int j = 0; j < kCriteoIntColumns; ++j) {
    out->push_back('\t');
    if (row.ints[j] == CtrRow::kMissing) continue;
    auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), row.ints[j]);
    out->append(buf, end - buf);
  }
  for (int f = 0; f < kCriteoCatColumns; ++f) {
    out->push_back('\t');
    if (row.cats[f] < 0) continue;
    AppendHex8(Permute32(static_cast<uint32_t>(row.cats[f]) ^ fields_[f].salt), out);
  }
  out->push_back('\n');
}

double ExactAuc(const std::vector<float>& scores, const std::vector<uint8_t>& labels) {
  const size_t n = std::min(scores.size(), labels.size());
  std::vector<std::pair<float, uint8_t>> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = {scores[i], labels[i] ? uint8_t{1} : uint8_t{0}};
  std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  double negatives_below = 0, area = 0, positives = 0;
  for (size_t i = 0; i < n;) {
    size_t j = i;
    double pos = 0, neg = 0;
    for (; j < n && v[j].first == v[i].first; ++j) (v[j].second ? pos : neg) += 1;
    area += pos * (negatives_below + 0.5 * neg);
    negatives_below += neg;
    positives += pos;
    i = j;
  }
  if (positives == 0 || negatives_below == 0) return std::numeric_limits<double>::quiet_NaN();
  return area / (positives * negatives_below);
}

absl::StatusOr<SplitPlan> PlanSplits(const std::vector<double>& splits, const std::string& out,
                                     const std::string& extension) {
  if (splits.empty() || splits.size() > 3) {
    return absl::InvalidArgumentError(
        absl::StrCat("datagen: 1 to 3 split fractions expected, got ", splits.size()));
  }
  SplitPlan plan;
  plan.splits = splits;
  for (double s : splits) {
    if (!(s >= 0) || !std::isfinite(s)) {
      return absl::InvalidArgumentError(absl::StrCat("datagen: bad split fraction ", s));
    }
    plan.total += s;
  }
  if (plan.total <= 0) return absl::InvalidArgumentError("datagen: split fractions sum to 0");
  if (out.empty()) return absl::InvalidArgumentError("datagen: no output path");
  if (splits.size() == 1) {
    plan.paths.push_back(out);
  } else {
    const char* names[] = {"train", "valid", "test"};
    for (size_t i = 0; i < splits.size(); ++i) {
      plan.paths.push_back(absl::StrCat(out, ".", names[i], ".", extension));
    }
  }
  return plan;
}

absl::StatusOr<std::vector<DatagenFileReport>> WriteSplits(
    const SplitPlan& plan, int64_t rows_total, const std::string& header,
    const std::function<GeneratedRow(std::string*)>& next,
    const std::function<void(int64_t)>& progress, int64_t progress_every) {
  const std::vector<std::string>& paths = plan.paths;
  const std::vector<double>& splits = plan.splits;
  const double total = plan.total;
  const std::filesystem::path parent = std::filesystem::path(paths[0]).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    if (ec) {
      return ErrnoError(parent.string(), "cannot create directory", ec.value());
    }
  }
  std::vector<DatagenFileReport> files;
  std::string data, probs;
  data.reserve(kFlushBytes + 4096);
  probs.reserve(kFlushBytes / 4 + 4096);
  std::vector<float> scores;
  std::vector<uint8_t> labels;
  int64_t done = 0;
  double cumulative = 0;
  for (size_t s = 0; s < splits.size(); ++s) {
    cumulative += splits[s];
    const int64_t end = s + 1 == splits.size()
                            ? rows_total
                            : static_cast<int64_t>(std::llround(rows_total * (cumulative / total)));
    const int64_t rows = std::max<int64_t>(0, end - done);
    DatagenFileReport file;
    file.path = paths[s];
    file.rows = rows;
    const std::string prob_path = paths[s] + ".prob";
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(paths[s].c_str(), "wb"),
                                                      &std::fclose);
    if (f == nullptr) return ErrnoError(paths[s], "cannot create");
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> pf(std::fopen(prob_path.c_str(), "wb"),
                                                       &std::fclose);
    if (pf == nullptr) return ErrnoError(prob_path, "cannot create");
    data = header;
    scores.clear();
    labels.clear();
    scores.reserve(rows);
    labels.reserve(rows);
    double clicks = 0, prob_sum = 0;
    for (int64_t i = 0; i < rows; ++i) {
      const GeneratedRow row = next(&data);
      char buf[32];
      auto [pend, ec] =
          std::to_chars(buf, buf + sizeof(buf), row.prob, std::chars_format::fixed, 6);
      probs.append(buf, pend - buf);
      probs.push_back('\n');
      scores.push_back(row.prob);
      labels.push_back(static_cast<uint8_t>(row.label));
      clicks += row.label;
      prob_sum += row.prob;
      if (data.size() >= kFlushBytes) {
        RETURN_IF_ERROR(WriteAll(f.get(), data, paths[s]));
        RETURN_IF_ERROR(WriteAll(pf.get(), probs, prob_path));
        data.clear();
        probs.clear();
      }
      if (++done % progress_every == 0 && progress) progress(done);
    }
    RETURN_IF_ERROR(WriteAll(f.get(), data, paths[s]));
    RETURN_IF_ERROR(WriteAll(pf.get(), probs, prob_path));
    data.clear();
    probs.clear();
    if (std::fclose(f.release()) != 0) {
      return ErrnoError(paths[s], "close failed");
    }
    if (std::fclose(pf.release()) != 0) {
      return ErrnoError(prob_path, "close failed");
    }
    file.ctr = rows > 0 ? clicks / rows : 0;
    file.mean_prob = rows > 0 ? prob_sum / rows : 0;
    file.oracle_auc = ExactAuc(scores, labels);
    files.push_back(file);
  }
  return files;
}

absl::StatusOr<DatagenReport> WriteCtrData(const DatagenOptions& options, const std::string& out,
                                           const std::function<void(int64_t)>& progress) {
  ASSIGN_OR_RETURN(SplitPlan plan, PlanSplits(options.splits, out, "tsv"));
  ASSIGN_OR_RETURN(std::unique_ptr<CtrGenerator> gen, CtrGenerator::Create(options));

  DatagenReport report;
  report.bias = gen->bias();
  CtrRow row;
  ASSIGN_OR_RETURN(report.files, WriteSplits(
                                     plan, options.rows, "",
                                     [&](std::string* data) {
                                       gen->Next(&row);
                                       gen->AppendTsv(row, data);
                                       return GeneratedRow{row.prob, row.label};
                                     },
                                     progress, 1000000));
  return report;
}

}  // namespace ctrps
