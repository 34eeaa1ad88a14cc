// Client of a sharded parameter server.
//
//   ASSIGN_OR_RETURN(auto client, PsClient::Connect({.endpoints = eps}));
//   PsFuture f = client->Pull("item", keys, 16, out);   // returns at once
//   ... compute ...
//   RETURN_IF_ERROR(f.Wait());                           // out is filled
//
// Keys are split by shard (ShardOf), one request per shard goes out, and the
// replies are gathered back in the caller's key order. With a server on the
// same host, the bulk data goes through shared memory (see
// PsClientOptions::shared_memory_bytes); only headers use the socket. Every request has a
// deadline; a server that does not answer in time (crashed, unreachable)
// yields Unavailable naming it, never a hang.
//
// Thread safety: all methods may be called from any thread. Buffers passed to
// Pull/Push (keys, out, grads, counts) must stay valid until the future is
// done.
//
// Errors of a request: a server's error comes back with its code, the
// message prefixed with "server <i> (<endpoint>): " (PsServer::Handle lists
// the codes by op); Unavailable when a server did not answer within the
// timeout (whether it served the request is unknown); Cancelled when the
// client is destroyed first; Internal for a reply of the wrong size. A
// request to several servers returns the first error; the servers that
// answered OK served their part.
//
// With one server on this host, rows can skip the client's copy altogether:
// pull into, and push from, a PsBuffer (NewBuffer), which the server reads
// and writes where it is.
#ifndef CTRPS_WORKER_PS_CLIENT_H_
#define CTRPS_WORKER_PS_CLIENT_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/proto/wire.pb.h"
#include "common/shared_memory.h"
#include "zmq.hpp"

namespace ctrps {

// Step tracking (TrainConfig.sparse_sync SYNC or BOUNDED; ps/step_sync.h):
// the tags of a training request (RequestHeader.sync_*). A tagged push
// goes to every server, with no keys where it has none, so that each
// server counts every worker's push of every step.
struct StepTag {
  int worker = -1;  // the sender's worker rank; < 0: not tagged
  uint64_t first_step = 0;
  // PULL: served once every worker's pushes of steps up to this one are
  // applied; none: at once.
  std::optional<uint64_t> wait_step;
};

struct PsClientOptions {
  std::vector<std::string> endpoints;          // one per shard, in shard order
  absl::Duration timeout = absl::Seconds(30);  // per request
  absl::Duration connect_timeout = absl::Seconds(30);
  // Per server on this host: keys, gradients and pulled rows go through a
  // shared-memory arena of this many bytes instead of the socket. A request
  // that does not fit in what is free, and a server on another host (it
  // cannot open the arena), use the socket. 0: always the socket.
  size_t shared_memory_bytes = size_t{256} << 20;
  // The job's secret sent with every request (RequestHeader.auth): its
  // member token, or the chief's (see common/security.h). Empty: none.
  std::string auth_token;
  // CURVE (all three set, Z85): connect as a CURVE client with this key
  // pair to servers whose public key is curve_server_public_key. A server
  // that expects another key never answers, and requests time out.
  std::string curve_server_public_key, curve_public_key, curve_secret_key;
};

class PsFuture {
 public:
  PsFuture() = default;
  // Waits until every shard replied (or the deadline passed); returns the
  // first error (the codes above). Waiting twice returns the same status.
  // FailedPrecondition for a default-constructed future.
  absl::Status Wait();
  bool done() const;
  bool valid() const { return state_ != nullptr; }

  struct State;  // opaque; defined in ps_client.cc

 private:
  friend class PsClient;
  explicit PsFuture(std::shared_ptr<State> s) : state_(std::move(s)) {}
  std::shared_ptr<State> state_;
};

// Floats for the rows of pulls and pushes, from PsClient::NewBuffer. With
// one server, on this host, they live in the shared-memory arena that server
// maps: it writes a pull's rows straight into the buffer and reads a push's
// gradients from it, and the client copies no rows (100k keys of dim 16:
// 6.4 MB a request it does not move). Otherwise (several servers, a remote
// one, an arena without room) it is ordinary memory and requests copy as
// they do for any pointer. Results are the same either way.
//
// A buffer may outlive its client. Not thread safe, like a vector; a
// moved-from buffer is empty. After a request through a shared buffer timed
// out, the server may still write that pull's rows into it, or read that
// push's gradients from it, until it answers: the buffer is busy() until
// then (for good, if the server never answers or the client is gone), Pull
// and Push refuse it with FailedPrecondition, and its arena range stays
// reserved even when the buffer is dropped, so no other request's data
// lands there. Take a new buffer to go on.
class PsBuffer {
 public:
  PsBuffer() = default;
  PsBuffer(PsBuffer&& other) noexcept { *this = std::move(other); }
  PsBuffer& operator=(PsBuffer&& other) noexcept;

  float* data() const { return data_; }
  size_t size() const { return size_; }
  // In the arena a server maps (requests through it copy no rows).
  bool shared() const { return region_ != nullptr; }
  // A request through it timed out and the server has not answered yet.
  bool busy() const;

  struct Region;  // opaque; defined in ps_client.cc

 private:
  friend class PsClient;
  std::shared_ptr<Region> region_;  // shared with requests that use it
  std::unique_ptr<float[]> heap_;
  float* data_ = nullptr;
  size_t size_ = 0;
};

class PsClient {
 public:
  // Connects to every endpoint and pings each server; Unavailable naming the
  // first server that does not answer within connect_timeout.
  // InvalidArgument for no endpoints or an endpoint ZeroMQ cannot parse.
  // Shared memory is set up where it can be; where not, the socket is used,
  // which is no error.
  static absl::StatusOr<std::unique_ptr<PsClient>> Connect(const PsClientOptions& options);
  ~PsClient();

  int num_shards() const { return static_cast<int>(endpoints_.size()); }
  // Servers whose requests go through shared memory.
  int num_shared_memory_shards() const;
  // Per-server parts of pulls and pushes sent so far whose data went through
  // shared memory (the rest went through the socket).
  uint64_t shared_memory_parts() const {
    return shared_memory_parts_.load(std::memory_order_relaxed);
  }

  // out: keys.size() * dim floats. Errors as the future's (see the top of
  // this file). On error `out` is partly written: rows of the servers that
  // answered are filled, the others are not; discard it. A timed-out pull
  // into memory the caller owns is never written after Wait returns.
  // A pull tagged with a wait_step may wait on the server for other
  // workers' pushes (within the request timeout); when they do not come,
  // DeadlineExceeded names the workers.
  // catch_up_to > 0: the servers first bring rows of tables with
  // l2_on_missed_steps up to date as of step catch_up_to - 1 (see
  // RequestHeader.l2_catch_up_to), with the learning rate times
  // learning_rate_scale in (0, 1]. Only steps whose pushes all completed
  // may be caught up this way: a later push of an earlier step would add
  // an update.
  PsFuture Pull(const std::string& table, std::span<const uint64_t> keys, int dim, float* out,
                uint64_t global_step = 0, const StepTag& tag = {}, uint64_t catch_up_to = 0,
                float learning_rate_scale = 1.0f);
  // grads: keys.size() * dim floats; counts: keys.size() or null.
  // learning_rate_scale in (0, 1] multiplies the table's learning rate.
  // Errors as the future's (InvalidArgument from the server for a
  // learning_rate_scale or batch_fraction outside (0, 1]). On error the
  // push is applied on the servers that answered OK, possibly in part on
  // the one that failed (SparseTable::Push), and maybe on one that timed
  // out: pushing it again applies some gradients twice.
  // A tagged push under SYNC completes once its step is applied: waiting
  // for it waits for every worker's push of that step.
  PsFuture Push(const std::string& table, std::span<const uint64_t> keys, int dim,
                const float* grads, const uint32_t* counts = nullptr, uint64_t global_step = 0,
                float learning_rate_scale = 1.0f, float batch_fraction = 1.0f,
                const StepTag& tag = {});

  // A buffer of `floats` floats, zeroed; shared() when the client has one
  // server and it maps the client's arena, with room for it.
  PsBuffer NewBuffer(size_t floats);
  // As above, with the rows in `out` or the gradients in `grads`: at least
  // keys.size() * dim floats (InvalidArgument otherwise, nothing sent).
  // FailedPrecondition, nothing sent, for a busy() buffer.
  PsFuture Pull(const std::string& table, std::span<const uint64_t> keys, int dim, PsBuffer& out,
                uint64_t global_step = 0, uint64_t catch_up_to = 0,
                float learning_rate_scale = 1.0f);
  PsFuture Push(const std::string& table, std::span<const uint64_t> keys, int dim,
                const PsBuffer& grads, const uint32_t* counts = nullptr, uint64_t global_step = 0,
                float learning_rate_scale = 1.0f, float batch_fraction = 1.0f);
  // Per-server parts of pulls and pushes whose rows stayed in a shared
  // PsBuffer (no copy on the client).
  uint64_t zero_copy_parts() const { return zero_copy_parts_.load(std::memory_order_relaxed); }

  // Each server's statistics, in shard order. Errors as the future's.
  absl::StatusOr<std::vector<ServerStats>> Stats();

  // Every server flushes its tables and writes a RocksDB checkpoint to
  // <dir>/server-<shard>. Returns the rows each server wrote. Pushes must be
  // paused (the trainer drains them first) for the rows to be one instant.
  // Errors as the future's, with PsServer::Handle's SAVE codes
  // (ResourceExhausted for a full disk; Unavailable past `timeout`). On
  // error `dir` is no checkpoint: some server-<shard> directories may be
  // complete, and no manifest is written here. Nothing is lost on the
  // servers; a later Save writes the rest.
  absl::StatusOr<std::vector<uint64_t>> Save(const std::string& dir, absl::Duration timeout);
  // Every server loads the rows it owns from the checkpoint at `dir`
  // (written by any number of servers). Returns the rows each loaded.
  // Errors as the future's, with PsServer::Handle's LOAD codes (NotFound /
  // DataLoss for a missing or damaged checkpoint, FailedPrecondition when a
  // table already has rows). On error some servers may have loaded and
  // others not: restart the servers before training.
  absl::StatusOr<std::vector<uint64_t>> Load(const std::string& dir, absl::Duration timeout);
  // Asks every server to exit; waits for their acknowledgements. Errors as
  // the future's: Unavailable names a server that did not acknowledge (it
  // may still be running).
  absl::Status Shutdown();

 private:
  struct Request;
  explicit PsClient(const PsClientOptions& options);
  absl::Status Start();
  // A future that is already done, with `status`.
  static PsFuture Completed(const absl::Status& status);
  // values: the caller's PsBuffer region holding out or grads, or null.
  PsFuture Submit(Op op, const std::string& table, std::span<const uint64_t> keys, int dim,
                  float* out, const float* grads, const uint32_t* counts, uint64_t global_step,
                  float learning_rate_scale, float batch_fraction,
                  const std::shared_ptr<PsBuffer::Region>& values = nullptr,
                  const StepTag& tag = {}, uint64_t catch_up_to = 0);
  // One control request per server; `fill(shard, header)` adds to each
  // header and may return false to send nothing to that shard. replies (may
  // be null) gets each shard's reply header; a shard that did not answer
  // keeps code UNAVAILABLE.
  PsFuture SubmitControl(Op op, std::vector<ReplyHeader>* replies,
                         const std::function<bool(int, RequestHeader*)>& fill = nullptr,
                         absl::Duration timeout = absl::ZeroDuration());
  // Maps an arena into each server that can open it (same host).
  void AttachArenas();
  void DetachArenas();
  void Enqueue(std::shared_ptr<Request> request, absl::Duration timeout);
  void IoLoop();

  std::vector<std::string> endpoints_;
  const std::string auth_token_;
  const std::string curve_server_public_key_, curve_public_key_, curve_secret_key_;
  absl::Duration timeout_;
  absl::Duration connect_timeout_;
  zmq::context_t context_;
  std::vector<zmq::socket_t> dealers_;        // used by the IO thread only
  std::unique_ptr<zmq::socket_t> wake_recv_;  // IO thread
  std::unique_ptr<zmq::socket_t> wake_send_ ABSL_GUARDED_BY(mu_);
  size_t shared_memory_bytes_;
  // Per shard, set in Start(), then read-only: the arena and the id its
  // server knows it by; null where requests use the socket.
  std::vector<std::shared_ptr<SharedArena>> arenas_;  // shared with PsBuffers
  std::vector<uint64_t> arena_ids_;
  std::atomic<bool> arenas_detached_{false};
  std::atomic<uint64_t> shared_memory_parts_{0};
  std::atomic<uint64_t> zero_copy_parts_{0};
  std::atomic<uint64_t> next_id_{1};
  std::atomic<bool> stopping_{false};
  std::thread io_thread_;

  absl::Mutex mu_;
  std::vector<std::shared_ptr<Request>> submitted_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ctrps

#endif  // CTRPS_WORKER_PS_CLIENT_H_
