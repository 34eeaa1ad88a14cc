// ctr-datagen: writes synthetic click data with planted structure and the
// true click probability of every row.
//
// --mode=criteo (default): Criteo-shaped TSV (see worker/data/ctr_datagen.h).
//   ctr-datagen --rows 10000000 --out /data/synth/d
//     -> d.train.tsv d.valid.tsv d.test.tsv (80/10/10), each with <file>.prob
//   ctr-datagen --rows 1000 --splits 1 --out /tmp/one.tsv
//     -> /tmp/one.tsv and /tmp/one.tsv.prob
// --mode=sequence: user behaviour sequences with planted interests, CSV
// `label,user,item,cate,hist_items,hist_cates` (see
// worker/data/sequence_datagen.h).
//   ctr-datagen --mode=sequence --rows 1000000 --out data/seq/d
//     -> d.train.csv d.valid.csv d.test.csv, each with <file>.prob
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "common/flags_util.h"
#include "gflags/gflags.h"
#include "worker/data/ctr_datagen.h"
#include "worker/data/sequence_datagen.h"

DEFINE_string(mode, "criteo",
              "criteo: Criteo-shaped TSV; sequence: user behaviour sequences (CSV) with planted "
              "interests, for MEANPOOL / DIN / SDIM.");
DEFINE_int64(rows, 1000000, "Rows to write, over all splits.");
DEFINE_string(out, "",
              "Output file (one split) or prefix: <out>.train.tsv, <out>.valid.tsv, "
              "<out>.test.tsv (.csv in sequence mode); each with a side file <file>.prob (true "
              "probabilities).");
DEFINE_string(splits, "0.8,0.1,0.1",
              "Fractions of the rows for train,valid,test in that "
              "order (1 to 3 values); a single value writes --out itself.");
DEFINE_uint64(seed, 2024, "Random seed; the output is a pure function of the flags.");
DEFINE_double(interaction_strength, 1.0,
              "Scale of the pairwise hidden-factor interaction term of the logit (0 = none).");
DEFINE_string(interactions, "clique",
              "Which categorical fields interact: clique = every pair among 23 of the 26 (an "
              "FM's interaction term over them); pairs = 15 chosen pairs only (a sparse pair "
              "graph that a low-dim FM cannot represent).");
DEFINE_int64(max_cardinality, 1000000,
             "Cap on the distinct values of a categorical field (the Criteo cardinalities, "
             "up to 10M, are capped at this).");
DEFINE_double(ctr, 0.22, "Target click-through rate (mean true probability).");
DEFINE_int32(factor_dim, 8, "Dimension of the hidden per-value factor vectors.");
DEFINE_double(zipf_exponent, 1.05, "Exponent of the Zipf law of categorical values.");
// Sequence mode (--factor_dim, --ctr, --seed, --splits, --rows apply too).
DEFINE_int64(users, 100000, "Sequence mode: distinct users.");
DEFINE_int64(items, 100000, "Sequence mode: distinct items.");
DEFINE_int32(categories, 100, "Sequence mode: item categories (clusters of item vectors).");
DEFINE_int32(min_interests, 2, "Sequence mode: fewest interest categories per user.");
DEFINE_int32(max_interests, 4, "Sequence mode: most interest categories per user.");
DEFINE_int32(min_history, 50, "Sequence mode: shortest history (uniform in [min, max]).");
DEFINE_int32(max_history, 500, "Sequence mode: longest history.");
DEFINE_double(interest_strength, 5.0,
              "Sequence mode: logit weight of max cos(target, user interest).");
DEFINE_double(item_bias_std, 0.5, "Sequence mode: std of the per-item logit bias.");
DEFINE_double(near_target_fraction, 0.5,
              "Sequence mode: fraction of targets drawn from the user's interests (the rest are "
              "random items).");
DEFINE_double(history_noise, 0.1,
              "Sequence mode: fraction of history items drawn at random instead of from an "
              "interest.");

int main(int argc, char** argv) {
  ctrps::ParseFlags(
      &argc, &argv,
      "writes synthetic click data with planted structure and the true click probability of "
      "each row: Criteo-shaped TSV (--mode=criteo) or user behaviour sequences as CSV "
      "(--mode=sequence).\n"
      "  ctr-datagen --rows 1000000 --out /tmp/gen/d\n"
      "  ctr-datagen --mode=sequence --rows 1000000 --out data/seq/d");
  if (FLAGS_out.empty()) {
    std::fprintf(stderr, "ctr-datagen: --out is required (see --help)\n");
    return 2;
  }
  if (FLAGS_mode != "criteo" && FLAGS_mode != "sequence") {
    std::fprintf(stderr, "ctr-datagen: --mode=%s: expected criteo or sequence\n",
                 FLAGS_mode.c_str());
    return 2;
  }
  ctrps::DatagenOptions options;
  options.rows = FLAGS_rows;
  options.seed = FLAGS_seed;
  options.interaction_strength = FLAGS_interaction_strength;
  if (FLAGS_interactions == "clique") {
    options.interactions = ctrps::Interactions::kClique;
  } else if (FLAGS_interactions == "pairs") {
    options.interactions = ctrps::Interactions::kPairs;
  } else {
    std::fprintf(stderr, "ctr-datagen: --interactions must be clique or pairs, got '%s'\n",
                 FLAGS_interactions.c_str());
    return 2;
  }
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
  absl::StatusOr<ctrps::DatagenReport> report;
  if (FLAGS_mode == "sequence") {
    ctrps::SequenceDatagenOptions seq;
    seq.rows = FLAGS_rows;
    seq.seed = FLAGS_seed;
    seq.users = FLAGS_users;
    seq.items = FLAGS_items;
    seq.categories = FLAGS_categories;
    seq.min_interests = FLAGS_min_interests;
    seq.max_interests = FLAGS_max_interests;
    seq.min_history = FLAGS_min_history;
    seq.max_history = FLAGS_max_history;
    seq.factor_dim = FLAGS_factor_dim;
    seq.interest_strength = FLAGS_interest_strength;
    seq.item_bias_std = FLAGS_item_bias_std;
    seq.near_target_fraction = FLAGS_near_target_fraction;
    seq.history_noise = FLAGS_history_noise;
    seq.target_ctr = FLAGS_ctr;
    seq.splits = options.splits;
    report = ctrps::WriteSequenceData(seq, FLAGS_out, [&](int64_t done) {
      std::fprintf(stderr, "ctr-datagen: %lld / %lld rows (%.0f%%), %.0f rows/s\n",
                   static_cast<long long>(done), static_cast<long long>(seq.rows),
                   100.0 * done / std::max<int64_t>(1, seq.rows), done / seconds());
    });
  } else {
    report = ctrps::WriteCtrData(options, FLAGS_out, progress);
  }
  if (!report.ok()) {
    std::fprintf(stderr, "ctr-datagen: %s\n", report.status().ToString().c_str());
    return 1;
  }
  std::printf("ctr-datagen: %s%lld rows in %.1fs (seed %llu, bias %.4f)\n",
              FLAGS_mode == "sequence" ? "sequence, " : "", static_cast<long long>(options.rows),
              seconds(), static_cast<unsigned long long>(options.seed), report->bias);
  for (const ctrps::DatagenFileReport& f : report->files) {
    std::printf("  %s: %lld rows, ctr %.4f (mean p %.4f), oracle AUC %.4f\n", f.path.c_str(),
                static_cast<long long>(f.rows), f.ctr, f.mean_prob, f.oracle_auc);
  }
  return 0;
}
