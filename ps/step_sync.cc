#include "ps/step_sync.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/sync_point.h"
#include "glog/logging.h"

namespace ctrps {
namespace {

// How often Expire looks at the tables.
constexpr int64_t kExpiryCheckNs = 50'000'000;

int64_t NowNs() { return std::chrono::steady_clock::now().time_since_epoch().count(); }

}  // namespace

StepSync::StepSync(const Options& options, const std::vector<std::pair<std::string, int>>& tables,
                   ApplyFn apply)
    : options_(options), apply_(std::move(apply)) {
  for (const auto& [name, dim] : tables) {
    auto t = std::make_unique<Table>();
    t->name = name;
    t->dim = dim;
    by_name_[name] = t.get();
    tables_.push_back(std::move(t));
  }
  absl::MutexLock lock(&stats_mu_);
  staleness_.assign(kStalenessBuckets, 0);
}

StepSync::Table* StepSync::Find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

absl::Status StepSync::Validate(const RequestHeader& header) const {
  if (Find(header.table()) == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("unknown table \"", header.table(), "\""));
  }
  if (header.has_sync_worker() &&
      (header.sync_worker() < 0 || header.sync_worker() >= options_.num_workers)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("sync_worker %d is outside [0, %d): this server was started for %d "
                        "worker(s)",
                        header.sync_worker(), options_.num_workers, options_.num_workers));
  }
  if (header.global_step() < header.sync_first_step()) {
    return absl::InvalidArgumentError(absl::StrFormat("step %d is before the run's first step %d",
                                                      header.global_step(),
                                                      header.sync_first_step()));
  }
  return absl::OkStatus();
}

void StepSync::StartRun(Table& t, uint64_t first_step) {
  if (t.started && t.first_step == first_step) return;
  if (t.started) {
    LOG(WARNING) << "table \"" << t.name << "\": step tracking restarts at step " << first_step
                 << " (a new run of the workers); " << t.pending.size() << " pending step(s) and "
                 << t.held.size() << " held pull(s) of the last run are dropped";
  }
  t.started = true;
  t.first_step = first_step;
  t.complete_end = first_step;
  t.pending.clear();
  t.held.clear();
  t.last_pushed.assign(options_.num_workers, -1);
}

bool StepSync::HoldPull(const RequestHeader& header, Frames& request, Release* release) {
  Table* t = Find(header.table());
  if (t == nullptr) return true;  // the server answers NotFound
  absl::Status stopped;
  if (has_stopped_.load()) {
    absl::MutexLock lock(&stop_mu_);
    stopped = stopped_;
  }
  if (!stopped.ok()) {
    release->replies.push_back({std::move(request[0]), header.request_id(), stopped});
    return false;
  }
  absl::MutexLock lock(&t->mu);
  StartRun(*t, header.sync_first_step());
  if (header.sync_wait_step() < t->complete_end) return true;
  t->held.push_back(
      {std::move(request), header.request_id(), header.sync_wait_step(), absl::Now()});
  TEST_SYNC_POINT("StepSync::HoldPull:Held");
  return false;
}

void StepSync::CountServedPull(const RequestHeader& header) {
  Table* t = Find(header.table());
  if (t == nullptr) return;
  uint64_t lag = 0;
  {
    absl::MutexLock lock(&t->mu);
    StartRun(*t, header.sync_first_step());
    // A pull for step t should see every push of steps before t.
    if (header.global_step() > t->complete_end) lag = header.global_step() - t->complete_end;
  }
  absl::MutexLock lock(&stats_mu_);
  ++staleness_[std::min<uint64_t>(lag, kStalenessBuckets - 1)];
}

absl::StatusOr<bool> StepSync::Push(const RequestHeader& header, std::span<const uint64_t> keys,
                                    const float* grads, const uint32_t* counts,
                                    zmq::message_t* identity, Release* release) {
  Table* tp = Find(header.table());
  if (tp == nullptr) return false;
  Table& t = *tp;
  const uint64_t step = header.global_step();
  const int rank = header.sync_worker();
  const bool sync = options_.mode == TrainConfig::SYNC;
  if (sync && has_stopped_.load()) return false;
  absl::MutexLock lock(&t.mu);
  StartRun(t, header.sync_first_step());
  if (step < t.complete_end) {
    return absl::InvalidArgumentError(
        absl::StrFormat("push of step %d from worker %d to table \"%s\": that step is already "
                        "complete",
                        step, rank, t.name));
  }
  Step& st = t.pending[step];
  if (st.pushes.empty()) {
    st.pushes.resize(options_.num_workers);
    st.first_arrival = absl::Now();
  }
  PushCopy& p = st.pushes[rank];
  if (p.arrived) {
    return absl::InvalidArgumentError(
        absl::StrFormat("worker %d pushed step %d of table \"%s\" twice", rank, step, t.name));
  }
  p.arrived = true;
  ++st.arrived;
  t.last_pushed[rank] = std::max<int64_t>(t.last_pushed[rank], static_cast<int64_t>(step));
  if (!sync) {
    AdvanceCounted(t);
    ReleaseReady(t, release);
    return false;
  }
  p.request_id = header.request_id();
  p.identity = std::move(*identity);
  p.keys.assign(keys.begin(), keys.end());
  p.grads.assign(grads, grads + keys.size() * t.dim);
  if (counts != nullptr) p.counts.assign(counts, counts + keys.size());
  p.lr_scale = header.learning_rate_scale();
  p.batch_fraction = header.batch_fraction();
  ApplySteps(t, /*force=*/false, release);
  return true;
}

void StepSync::AdvanceCounted(Table& t) {
  while (!t.pending.empty()) {
    auto it = t.pending.begin();
    if (it->first != t.complete_end || it->second.arrived < options_.num_workers) break;
    t.pending.erase(it);
    ++t.complete_end;
    absl::MutexLock lock(&stats_mu_);
    ++steps_applied_;
  }
}

void StepSync::ReleaseReady(Table& t, Release* release) {
  if (t.held.empty()) return;
  const absl::Time now = absl::Now();
  size_t kept = 0;
  for (HeldPull& h : t.held) {
    if (h.wait_step < t.complete_end) {
      {
        absl::MutexLock lock(&stats_mu_);
        ++waits_;
        wait_seconds_ += absl::ToDoubleSeconds(now - h.since);
      }
      release->serve.push_back(std::move(h.request));
    } else {
      t.held[kept++] = std::move(h);
    }
  }
  t.held.resize(kept);
}

void StepSync::ApplySteps(Table& t, bool force, Release* release) {
  if (t.applying) return;  // that thread applies what becomes complete meanwhile
  t.applying = true;
  while (!t.pending.empty()) {
    force = force || has_stopped_.load();
    auto it = t.pending.begin();
    if (!force && (it->first != t.complete_end || it->second.arrived < options_.num_workers)) break;
    const uint64_t step = it->first;
    std::vector<PushCopy> pushes = std::move(it->second.pushes);
    t.pending.erase(it);
    t.mu.Unlock();
    TEST_SYNC_POINT("StepSync::ApplySteps:Apply");
    absl::Status status = ApplyOne(t, step, pushes);
    t.mu.Lock();
    if (!status.ok()) {
      LOG(ERROR) << "table \"" << t.name << "\": step " << step << " failed to apply: " << status;
    }
    for (PushCopy& p : pushes) {
      if (p.arrived) release->replies.push_back({std::move(p.identity), p.request_id, status});
    }
    t.complete_end = std::max(t.complete_end, step + 1);
    {
      absl::MutexLock lock(&stats_mu_);
      ++steps_applied_;
    }
    ReleaseReady(t, release);
  }
  t.applying = false;
}

absl::Status StepSync::ApplyOne(Table& t, uint64_t step, std::vector<PushCopy>& pushes) {
  const int dim = t.dim;
  float lr_scale = 1.0f, fraction = 0.0f;
  int with_keys = 0;
  size_t total_keys = 0;
  const PushCopy* only = nullptr;
  bool first = true;
  for (const PushCopy& p : pushes) {
    if (!p.arrived) continue;
    if (first) lr_scale = p.lr_scale;
    first = false;
    if (p.keys.empty()) continue;
    ++with_keys;
    total_keys += p.keys.size();
    only = &p;
    fraction += p.batch_fraction;
  }
  if (with_keys == 0) return absl::OkStatus();
  fraction = std::clamp(fraction, 1e-6f, 1.0f);
  if (with_keys == 1 && !only->counts.empty()) {
    return apply_(t.name, only->keys, only->grads.data(), only->counts.data(), step, lr_scale,
                  fraction);
  }
  // Sum in worker order: the same pushes give the same sums, bit for bit,
  // whatever order they arrived in.
  // clear() frees a large table: size it once instead of growing it per step.
  t.index.clear();
  t.index.reserve(total_keys);
  t.keys.clear();
  t.grads.clear();
  t.counts.clear();
  for (const PushCopy& p : pushes) {
    if (!p.arrived) continue;
    for (size_t i = 0; i < p.keys.size(); ++i) {
      const uint32_t c = p.counts.empty() ? 1 : p.counts[i];
      const float* g = p.grads.data() + i * dim;
      auto [it, inserted] = t.index.try_emplace(p.keys[i], static_cast<uint32_t>(t.keys.size()));
      if (inserted) {
        t.keys.push_back(p.keys[i]);
        t.grads.insert(t.grads.end(), g, g + dim);
        t.counts.push_back(c);
      } else {
        float* dst = t.grads.data() + static_cast<size_t>(it->second) * dim;
        for (int d = 0; d < dim; ++d) dst[d] += g[d];
        t.counts[it->second] += c;
      }
    }
  }
  return apply_(t.name, t.keys, t.grads.data(), t.counts.data(), step, lr_scale, fraction);
}

std::string StepSync::Missing(Table& t, uint64_t step) {
  std::vector<std::string> missing;
  auto it = t.pending.find(step);
  for (int r = 0; r < options_.num_workers; ++r) {
    const bool arrived = it != t.pending.end() && it->second.pushes[r].arrived;
    if (arrived) continue;
    missing.push_back(t.last_pushed[r] < 0 ? absl::StrCat("worker ", r, " (no push yet)")
                                           : absl::StrCat("worker ", r, " (last push: step ",
                                                          t.last_pushed[r], ")"));
  }
  return absl::StrFormat(
      "sync: step %d of table \"%s\": no push from %s within %s; stalled or exited, so the job "
      "stops",
      step, t.name, absl::StrJoin(missing, ", "), absl::FormatDuration(options_.timeout));
}

void StepSync::Expire(absl::Time now, Release* release) {
  if (!enabled() || has_stopped_.load()) return;
  const int64_t now_ns = NowNs();
  int64_t next = next_expiry_check_ns_.load(std::memory_order_relaxed);
  if (now_ns < next) return;
  if (!next_expiry_check_ns_.compare_exchange_strong(next, now_ns + kExpiryCheckNs)) return;
  absl::Status overdue;
  for (auto& tp : tables_) {
    Table& t = *tp;
    absl::MutexLock lock(&t.mu);
    if (!t.started) continue;
    bool late = false;
    for (const HeldPull& h : t.held) late = late || now - h.since > options_.timeout;
    if (!t.pending.empty()) {
      const Step& front = t.pending.begin()->second;
      late = late ||
             (front.arrived < options_.num_workers && now - front.first_arrival > options_.timeout);
    }
    if (late) {
      overdue = absl::DeadlineExceededError(Missing(t, t.complete_end));
      break;
    }
  }
  if (!overdue.ok()) Stop(overdue, release);
}

void StepSync::Stop(const absl::Status& status, Release* release) {
  {
    absl::MutexLock lock(&stop_mu_);
    if (!stopped_.ok()) return;
    stopped_ = status;
    has_stopped_.store(true);
  }
  LOG(ERROR) << status.message();
  for (auto& tp : tables_) {
    Table& t = *tp;
    absl::MutexLock lock(&t.mu);
    for (HeldPull& h : t.held) {
      release->replies.push_back({std::move(h.request[0]), h.request_id, status});
    }
    t.held.clear();
    // What arrived is applied and acknowledged: no push that reached the
    // server is lost.
    if (options_.mode == TrainConfig::SYNC) ApplySteps(t, /*force=*/true, release);
  }
}

void StepSync::FillStats(ServerStats* stats) {
  if (!enabled()) return;
  absl::MutexLock lock(&stats_mu_);
  for (uint64_t n : staleness_) stats->add_staleness_histogram(n);
  stats->set_sync_steps(steps_applied_);
  stats->set_sync_waits(waits_);
  stats->set_sync_wait_seconds(wait_seconds_);
}

}  // namespace ctrps
