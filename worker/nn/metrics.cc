#include "worker/nn/metrics.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"

namespace ctrps::nn {

absl::StatusOr<double> ComputeAuc(std::span<const float> scores, std::span<const float> labels) {
  if (scores.size() != labels.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("AUC: ", scores.size(), " scores but ", labels.size(), " labels"));
  }
  std::vector<std::pair<float, bool>> items(scores.size());
  int64_t positives = 0;
  for (size_t i = 0; i < scores.size(); ++i) {
    if (std::isnan(scores[i])) {
      return absl::InvalidArgumentError(absl::StrCat("AUC: score ", i, " is NaN"));
    }
    items[i] = {scores[i], labels[i] >= 0.5f};
    positives += items[i].second;
  }
  const int64_t negatives = static_cast<int64_t>(items.size()) - positives;
  if (positives == 0 || negatives == 0) {
    return absl::InvalidArgumentError(absl::StrCat("AUC is undefined with ", positives,
                                                   " positives and ", negatives, " negatives"));
  }
  std::sort(items.begin(), items.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  // Walk groups of tied scores in ascending order. A positive beats every
  // negative below its group and half of those tied with it. Counting twice
  // that keeps everything in integers: 2 * wins = sum(2 p n_below + p n_tied).
  int64_t negatives_below = 0;
  __int128 twice_wins = 0;
  for (size_t i = 0; i < items.size();) {
    size_t j = i;
    int64_t p = 0, n = 0;
    for (; j < items.size() && items[j].first == items[i].first; ++j) {
      if (items[j].second) {
        ++p;
      } else {
        ++n;
      }
    }
    twice_wins += static_cast<__int128>(p) * (2 * negatives_below + n);
    negatives_below += n;
    i = j;
  }
  return static_cast<double>(twice_wins) /
         (2.0 * static_cast<double>(positives) * static_cast<double>(negatives));
}

absl::StatusOr<double> ComputeLogLoss(std::span<const float> probs, std::span<const float> labels) {
  if (probs.size() != labels.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("logloss: ", probs.size(), " predictions but ", labels.size(), " labels"));
  }
  if (probs.empty()) return absl::InvalidArgumentError("logloss of an empty set");
  constexpr double kEps = 1e-7;
  double sum = 0.0;
  for (size_t i = 0; i < probs.size(); ++i) {
    const double p = std::clamp<double>(probs[i], kEps, 1.0 - kEps);
    const double y = labels[i];
    sum -= y * std::log(p) + (1.0 - y) * std::log(1.0 - p);
  }
  return sum / static_cast<double>(probs.size());
}

void EvalSet::Add(std::span<const float> probs, std::span<const float> labels) {
  assert(probs.size() == labels.size());
  probs_.insert(probs_.end(), probs.begin(), probs.end());
  labels_.insert(labels_.end(), labels.begin(), labels.end());
}

void EvalSet::Merge(const EvalSet& other) { Add(other.probs_, other.labels_); }

void EvalSet::Clear() {
  probs_.clear();
  labels_.clear();
}

}  // namespace ctrps::nn
