// Step tracking on one server for synchronous and bounded-staleness training
// (TrainConfig.sparse_sync SYNC and BOUNDED; docs/SYNC.md).
//
// Every worker pushes every table to every server once per global step
// (with no keys where it has none), tagged with its rank and the step
// (RequestHeader.sync_worker, global_step). Per table, a step is complete
// once all num_workers pushes of it have arrived and been applied; the
// table's complete step is the last step s such that all of steps
// [first step, s] are complete.
//
// - SYNC: a push is kept, not applied. When the last push of the next step
//   arrives, the pushes of the step are summed key by key in worker order
//   (so the sum does not depend on arrival order) and applied as one push:
//   one optimizer step per key per global step. Their replies are held
//   until then, so a worker that has drained its pushes knows they are
//   applied.
// - BOUNDED: a push is applied as it arrives (by the caller), then counted.
//
// A training pull names the step it needs (RequestHeader.sync_wait_step):
// the server holds it, without a thread, until that step is complete, then
// serves it. Every wait has a deadline (Options::timeout): a step some
// worker has not pushed within it (counted from the step's first push, or
// from when a pull began waiting on it) stops the tracking. The held pulls
// and every later one that would wait fail with DeadlineExceeded naming the
// workers that did not push; what was pushed is applied (SYNC: the step's
// pushes that arrived, summed) and acknowledged, so no push that reached
// the server is lost. Pushes after that are applied as they come.
//
// This class holds the state and decides; the server moves the bytes. It
// owns the requests it holds (their frames, routing identity first) and
// hands them back in a Release.
//
// Thread safety: every method may be called concurrently. Applies of one
// table run one at a time, in step order.
#ifndef CTRPS_PS_STEP_SYNC_H_
#define CTRPS_PS_STEP_SYNC_H_

#include <cstdint>
#include <functional>
#include <atomic>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/proto/config.pb.h"
#include "common/proto/wire.pb.h"
#include "zmq.hpp"

namespace ctrps {

class StepSync {
 public:
  struct Options {
    TrainConfig::SparseSync mode = TrainConfig::ASYNC;
    int num_workers = 1;
    absl::Duration timeout = absl::Seconds(20);
  };
  // Buckets of ServerStats.staleness_histogram.
  static constexpr int kStalenessBuckets = 16;

  // A request's frames, its routing identity first (as the server queues it).
  using Frames = std::vector<zmq::message_t>;

  // What the server does after a call: serve these held pulls now (frames
  // as they were queued), and send these replies (a header with the
  // request id and status, nothing else).
  struct Release {
    std::vector<Frames> serve;
    struct Reply {
      zmq::message_t identity;
      uint64_t request_id = 0;
      absl::Status status;
    };
    std::vector<Reply> replies;
    bool empty() const { return serve.empty() && replies.empty(); }
  };

  // Applies one summed SYNC step to a table: keys, grads (keys x dim),
  // counts (keys), the step, the learning-rate scale and batch fraction.
  using ApplyFn = std::function<absl::Status(
      const std::string& table, std::span<const uint64_t> keys, const float* grads,
      const uint32_t* counts, uint64_t step, float lr_scale, float batch_fraction)>;

  // `tables`: every table name with its dim. ASYNC: the server never calls
  // the rest.
  StepSync(const Options& options, const std::vector<std::pair<std::string, int>>& tables,
           ApplyFn apply);

  bool enabled() const { return options_.mode != TrainConfig::ASYNC; }
  TrainConfig::SparseSync mode() const { return options_.mode; }

  // Checks a step-tagged request's fields: InvalidArgument for a worker
  // rank outside [0, num_workers), a step before the run's first step, or
  // an unknown table (the server checks tables first; this guards the map).
  absl::Status Validate(const RequestHeader& header) const;

  // A step-tagged PULL (header.has_sync_wait_step()) in `request`: true
  // when it can be served now. Otherwise the request is moved in and held
  // (or, if tracking has stopped, failed: see Release) and false returned.
  bool HoldPull(const RequestHeader& header, Frames& request, Release* release);

  // A training pull (header.has_sync_worker()) is being served: counts how
  // many steps of pushes it may be missing.
  void CountServedPull(const RequestHeader& header);

  // A step-tagged PUSH (header.has_sync_worker()), validated by the server
  // (keys, grads of the table's dim, counts or null).
  // - SYNC: copies the push and returns true: its reply is held (the
  //   identity is moved from `identity`) and comes back in a Release, OK
  //   once the step is applied, or with the apply's error. Applies every
  //   step now complete (the calling thread does, unless another is
  //   applying this table). After tracking has stopped, returns false:
  //   apply it now.
  // - BOUNDED: call after applying the push; counts it; returns false.
  // InvalidArgument (nothing kept or counted) for a second push of one
  // worker, table and step, or a push of a step already complete.
  absl::StatusOr<bool> Push(const RequestHeader& header, std::span<const uint64_t> keys,
                            const float* grads, const uint32_t* counts, zmq::message_t* identity,
                            Release* release);

  // Fails what waited past the deadline (see the top of this file). Cheap
  // when nothing is due; call every so often.
  void Expire(absl::Time now, Release* release);

  // Fills the step-tracking fields of the server's stats.
  void FillStats(ServerStats* stats);

 private:
  struct PushCopy {
    bool arrived = false;
    uint64_t request_id = 0;
    zmq::message_t identity;
    std::vector<uint64_t> keys;
    std::vector<float> grads;
    std::vector<uint32_t> counts;  // empty: 1 each
    float lr_scale = 1.0f;
    float batch_fraction = 1.0f;
  };
  struct Step {
    int arrived = 0;
    absl::Time first_arrival;
    std::vector<PushCopy> pushes;  // by worker rank (SYNC: with data; BOUNDED: arrived only)
  };
  struct HeldPull {
    Frames request;
    uint64_t request_id = 0;
    uint64_t wait_step = 0;
    absl::Time since;
  };
  struct Table {
    std::string name;
    int dim = 0;
    absl::Mutex mu;
    // The run the state belongs to (RequestHeader.sync_first_step); a
    // request of another run starts the table afresh.
    uint64_t first_step ABSL_GUARDED_BY(mu) = 0;
    bool started ABSL_GUARDED_BY(mu) = false;
    // Steps [first_step, complete_end) are complete.
    uint64_t complete_end ABSL_GUARDED_BY(mu) = 0;
    std::map<uint64_t, Step> pending ABSL_GUARDED_BY(mu);
    std::vector<int64_t> last_pushed ABSL_GUARDED_BY(mu);  // per worker; -1: none yet
    std::vector<HeldPull> held ABSL_GUARDED_BY(mu);
    bool applying ABSL_GUARDED_BY(mu) = false;  // a thread is applying SYNC steps
    // Summing scratch of the applying thread.
    absl::flat_hash_map<uint64_t, uint32_t> index;
    std::vector<uint64_t> keys;
    std::vector<float> grads;
    std::vector<uint32_t> counts;
  };

  Table* Find(const std::string& name) const;
  // Starts the table's state for the run of `first_step` if it is not yet.
  void StartRun(Table& t, uint64_t first_step) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.mu);
  // Moves the complete steps at the front of `pending` forward; BOUNDED
  // only (SYNC steps complete once applied).
  void AdvanceCounted(Table& t) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.mu);
  // Releases held pulls the table's complete steps now allow.
  void ReleaseReady(Table& t, Release* release) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.mu);
  // SYNC: applies complete steps in order until none is left (or, with
  // `force`, the front step however many pushes it has), replying to
  // their pushes; t.mu is released while applying.
  void ApplySteps(Table& t, bool force, Release* release) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.mu);
  // Sums a step's pushes in worker order into t's scratch and applies it.
  absl::Status ApplyOne(Table& t, uint64_t step, std::vector<PushCopy>& pushes);
  // Stops tracking with `status`; fails the held pulls of every table.
  void Stop(const absl::Status& status, Release* release);
  // "worker(s) 1, 3 pushed nothing for step 12 of table "emb"" and so on.
  std::string Missing(Table& t, uint64_t step) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.mu);

  const Options options_;
  const ApplyFn apply_;
  std::vector<std::unique_ptr<Table>> tables_;
  absl::flat_hash_map<std::string, Table*> by_name_;

  absl::Mutex stop_mu_;
  absl::Status stopped_ ABSL_GUARDED_BY(stop_mu_);
  std::atomic<bool> has_stopped_{false};
  std::atomic<int64_t> next_expiry_check_ns_{0};

  absl::Mutex stats_mu_;
  std::vector<uint64_t> staleness_ ABSL_GUARDED_BY(stats_mu_);
  uint64_t steps_applied_ ABSL_GUARDED_BY(stats_mu_) = 0;
  uint64_t waits_ ABSL_GUARDED_BY(stats_mu_) = 0;
  double wait_seconds_ ABSL_GUARDED_BY(stats_mu_) = 0;
};

}  // namespace ctrps

#endif  // CTRPS_PS_STEP_SYNC_H_
