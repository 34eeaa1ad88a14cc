// ctr-datagen: writes synthetic Criteo-shaped TSV data with planted structure
// and the true click probability of every row (see worker/data/ctr_datagen.h).
//
//   ctr-datagen --rows 10000000 --out /data/synth/d
//     -> d.train.tsv d.valid.tsv d.test.tsv (80/10/10), each with <file>.prob
//   ctr-datagen --rows 1000 --splits 1 --out /tmp/one.tsv
//     -> /tmp/one.tsv and /tmp/one.tsv.prob
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "gflags/gflags.h"
#include "worker/data/ctr_datagen.h"

DEFINE_int64(rows, 1000000, "Rows to write, over all splits.");
DEFINE_string(out, "",
              "Output file (one split) or prefix: <out>.train.tsv, <out>.valid.tsv, "
              "<out>.test.tsv; each with a side file <file>.prob (true probabilities).");
DEFINE_string(splits, "0.8,0.1,0.1",
              "Fractions of the rows for train,valid,test in that "
              "order (1 to 3 values); a single value writes --out itself.");
DEFINE_uint64(seed, 2024, "Random seed; the output is a pure function of the flags.");
DEFINE_double(interaction_strength, 1.0,
              "Scale of the pairwise hidden-factor interaction term of the logit (0 = none).");
DEFINE_int64(max_cardinality, 1000000,
             "Cap on the distinct values of a categorical field (the Criteo cardinalities, "
             "up to 10M, are capped at this).");
DEFINE_double(ctr, 0.22, "Target click-through rate (mean true probability).");
DEFINE_int32(factor_dim, 8, "Dimension of the hidden per-value factor vectors.");
DEFINE_double(zipf_exponent, 1.05, "Exponent of the Zipf law of categorical values.");

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "writes synthetic Criteo-shaped click data (CRITEO_TSV) with planted structure and the "
      "true click probability of each row.\n"
      "  ctr-datagen --rows 1000000 --out /tmp/gen/d");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  if (FLAGS_out.empty()) {
    std::fprintf(stderr, "ctr-datagen: --out is required (see --help)\n");
    return 2;
  }
  ctrps::DatagenOptions options;
  options.rows = FLAGS_rows;
  options.seed = FLAGS_seed;
  options.interaction_strength = FLAGS_interaction_strength;
  options.max_cardinality = FLAGS_max_cardinality;
  options.target_ctr = FLAGS_ctr;
  options.factor_dim = FLAGS_factor_dim;
  options.zipf_exponent = FLAGS_zipf_exponent;
  options.splits.clear();
  for (absl::string_view part : absl::StrSplit(FLAGS_splits, ',')) {
    double v;
    if (!absl::SimpleAtod(part, &v)) {
      std::fprintf(stderr, "ctr-datagen: --splits=%s: \"%s\" is not a number\n",
                   FLAGS_splits.c_str(), std::string(part).c_str());
      return 2;
    }
    options.splits.push_back(v);
  }

  const auto start = std::chrono::steady_clock::now();
  auto seconds = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  auto progress = [&](int64_t done) {
    const double s = seconds();
    std::fprintf(stderr, "ctr-datagen: %lld / %lld rows (%.0f%%), %.2fM rows/s\n",
                 static_cast<long long>(done), static_cast<long long>(options.rows),
                 100.0 * done / std::max<int64_t>(1, options.rows), done / s / 1e6);
  };
  absl::StatusOr<ctrps::DatagenReport> report = ctrps::WriteCtrData(options, FLAGS_out, progress);
  if (!report.ok()) {
    std::fprintf(stderr, "ctr-datagen: %s\n", report.status().ToString().c_str());
    return 1;
  }
  std::printf("ctr-datagen: %lld rows in %.1fs (seed %llu, bias %.4f)\n",
              static_cast<long long>(options.rows), seconds(),
              static_cast<unsigned long long>(options.seed), report->bias);
  for (const ctrps::DatagenFileReport& f : report->files) {
    std::printf("  %s: %lld rows, ctr %.4f (mean p %.4f), oracle AUC %.4f\n", f.path.c_str(),
                static_cast<long long>(f.rows), f.ctr, f.mean_prob, f.oracle_auc);
  }
  return 0;
}
