// A parameter server shard: its tables, a ROUTER socket, and a small pool of
// request-handling threads.
//
//   PsServer server(options);
//   RETURN_IF_ERROR(server.Start());      // binds; endpoint() is now known
//   server.Wait();                        // until a SHUTDOWN request or Stop()
//
// Handle() serves one request without sockets, for tests.
// Thread safety: Start/Stop/Wait from one thread; Handle from any.
#ifndef CTRPS_PS_PS_SERVER_H_
#define CTRPS_PS_PS_SERVER_H_

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "common/proto/config.pb.h"
#include "common/proto/wire.pb.h"
#include "common/shared_memory.h"
#include "ps/kv_store.h"
#include "ps/sparse_table.h"
#include "ps/step_sync.h"
#include "zmq.hpp"

namespace ctrps {

struct PsServerOptions {
  uint32_t shard = 0;
  uint32_t num_shards = 1;
  std::string bind = "tcp://127.0.0.1:0";  // port 0: ephemeral
  int threads = 2;
  int64_t memory_limit_bytes = 0;  // 0: unlimited
  // <storage_dir>/rocksdb: the store checkpoints go through; <storage_dir>/spill:
  // rows spilled past the memory limit. Needed when memory_limit_bytes > 0.
  std::string storage_dir;
  uint64_t min_free_disk_bytes = 0;               // SparseTable::Options::min_free_disk_bytes
  size_t spill_segment_bytes = size_t{64} << 20;  // SparseTable::Options::spill_segment_bytes
  int64_t max_request_bytes = 512ll << 20;
  int max_arenas = 256;  // shared arenas mapped at once (one per client on this host)
  std::vector<TableConfig> tables;
  // How pushes are applied (TrainConfig.sparse_sync; ps/step_sync.h): the
  // mode, the number of workers, and how long a step waits for its last
  // push.
  StepSync::Options step_sync;
  // The job's secrets (common/security.h). With a member_token, a request
  // whose RequestHeader.auth is neither it nor chief_token is refused
  // (PermissionDenied) before anything else is read. With a chief_token,
  // SHUTDOWN, SAVE and LOAD need it (PermissionDenied), and only the
  // chief's requests move the global step TTL eviction counts in; other
  // requests' steps stamp rows but are held to kMaxStepLead past it. Empty
  // (a server inside a test): any request is served and sets the step.
  std::string member_token, chief_token;
  // CURVE (both set, Z85): the socket is a CURVE server with this secret
  // key, and accepts only clients presenting curve_client_public_key; any
  // other client is dropped at the handshake.
  std::string curve_server_secret_key, curve_client_public_key;
  // SAVE and LOAD paths must lie below one of these directories
  // (PermissionDenied otherwise; symbolic links are resolved first). Empty:
  // any path.
  std::vector<std::string> checkpoint_roots;
  // Replies queued in a peer's connection (ZeroMQ's high-water mark). Past
  // it the peer counts as not reading: its next replies wait in the server
  // and its further requests are held, unserved, until it reads; held
  // requests past max_held_bytes_per_peer are dropped (no reply). A client
  // that never reads so costs the server at most about
  // reply_high_water_mark + threads replies and max_held_bytes_per_peer.
  int reply_high_water_mark = 4;
  int64_t max_held_bytes_per_peer = int64_t{64} << 20;
  // Requests queued in a peer's connection before TCP holds it back.
  int request_high_water_mark = 64;
  // How often, at most, rows past their TTL are looked for.
  int64_t ttl_sweep_interval_ns = 10'000'000'000;
};

class PsServer {
 public:
  explicit PsServer(PsServerOptions options);
  ~PsServer();

  // Creates the tables and the store (CreateTables), binds and starts the
  // threads. CreateTables' errors; Unavailable when the endpoint cannot be
  // bound (in use, bad address). On error no thread runs and nothing is
  // bound; tables and store already created stay (the destructor frees
  // them).
  absl::Status Start();
  // The bound endpoint ("tcp://127.0.0.1:41234"), after Start().
  const std::string& endpoint() const { return endpoint_; }
  // Blocks until a SHUTDOWN request arrives or Stop() is called.
  void Wait();
  void Stop();

  // Serves one request (frames after the routing identity) and fills the
  // reply frames. Never fails: a bad request gets an error reply. Sets
  // *shutdown for a SHUTDOWN request. Tables must exist (Start() or
  // CreateTables()).
  //
  // The reply header's code, by op:
  // - Any: InvalidArgument for a request that does not parse, is over
  //   max_request_bytes, or has an unknown op; PermissionDenied without the
  //   job's secret (see PsServerOptions::member_token). The server state
  //   is unchanged.
  // - PULL, PUSH: NotFound for an unknown table or shared arena;
  //   InvalidArgument for a wrong dim, frame count or size, num_keys or a
  //   reply larger than max_request_bytes, a range outside the arena, a
  //   learning_rate_scale or batch_fraction outside (0, 1], a gradient with
  //   a NaN or an infinity in a table that rejects them (the message names
  //   the table and the first such key); these change nothing. Otherwise SparseTable::Pull's or
  //   Push's codes, with what they leave behind: a failed PUSH is partly applied, and sending it
  //   again applies part of it twice (ResourceExhausted for a full disk after the whole update was
  //   applied is the exception).
  // - SHUTDOWN, SAVE, LOAD: PermissionDenied without the chief's secret,
  //   and for SAVE and LOAD a path outside checkpoint_roots.
  // - SAVE: InvalidArgument without a path; FailedPrecondition without a
  //   storage directory; SparseTable::Flush's codes (the store holds part
  //   of the changes, nothing is lost, and a later SAVE writes the rest);
  //   KvStore::Checkpoint's codes (no checkpoint directory is left).
  // - LOAD: InvalidArgument without a path, or for a table missing from
  //   this job or of another shape; FailedPrecondition without a storage
  //   directory or when a table already has rows; NotFound / DataLoss for
  //   a missing or damaged manifest; ScanRocksDb's codes and DataLoss for a
  //   row of a bad key, size or table; KvStore::Write's codes. A failed
  //   LOAD may leave part of the checkpoint's rows in the store, which the
  //   tables do not serve; a Save would copy them. Load again, or restart
  //   the server.
  // - ATTACH: InvalidArgument for a path not of the form /proc/<pid>/fd/<n>
  //   or a process that cannot be watched (so that its exit unmaps the
  //   arena); ResourceExhausted when max_arenas are mapped; SharedMapping::
  //   Open's codes (NotFound for an arena on another host). The reply's
  //   shm_id is random: it is the capability later requests name the arena
  //   by. DETACH: NotFound for an arena not attached.
  // - Step-tagged PULL, PUSH (options.step_sync not ASYNC): InvalidArgument
  //   for a worker rank outside [0, num_workers), a step before the run's
  //   first step, a second push of one worker, table and step, or a push of
  //   a step already complete (nothing applied or counted); a held pull
  //   fails with DeadlineExceeded, naming the workers that did not push,
  //   once step tracking has stopped (StepSync).
  // Step-tagged requests (StepSync) are served at once here: a SYNC push is
  // applied on its own, and a pull does not wait. The server's own threads
  // hold and sum them as ps/step_sync.h says.
  void Handle(std::vector<zmq::message_t>& request, std::vector<zmq::message_t>* reply,
              bool* shutdown, const std::string& peer = "in-process");

  // Creates tables and store without sockets (Start() calls it); does
  // nothing once they exist. InvalidArgument for a bad table config, a
  // table defined twice, or a memory limit without a storage directory;
  // OpenRocksDbStore's codes; the errno's code when the spill directory
  // cannot be created. Clears storage_dir first. On error the tables
  // created so far stay and a second call does nothing: destroy the server.
  absl::Status CreateTables();

  SparseTable* table(const std::string& name);
  ServerStats Stats();

 private:
  // A request's reply held back by step tracking (a SYNC push): `identity`
  // is moved into StepSync, `deferred` set, and no reply is sent now.
  struct Deferral {
    zmq::message_t* identity = nullptr;
    StepSync::Release* release = nullptr;
    bool deferred = false;
  };
  void HandleFramed(std::vector<zmq::message_t>& request, std::vector<zmq::message_t>* reply,
                    bool* shutdown, const std::string& peer, Deferral* deferral);
  absl::Status HandleRequest(const RequestHeader& header, std::vector<zmq::message_t>& request,
                             std::vector<zmq::message_t>* body, ReplyHeader* reply_header,
                             Deferral* deferral);
  // Sends `release`'s replies through `out` and queues its pulls first.
  void Dispatch(StepSync::Release& release, zmq::socket_t& out);
  // Rows of a request whose step may lead the chief's by more than this
  // are stamped with the chief's step plus this.
  static constexpr uint64_t kMaxStepLead = uint64_t{1} << 20;

  // PermissionDenied unless the request may run (member_token, chief_token).
  absl::Status Authorize(const RequestHeader& header, bool* chief) const;
  // PermissionDenied unless `dir` lies below one of checkpoint_roots.
  absl::Status CheckCheckpointPath(const std::string& dir) const;
  // The step a pull or push is served at; advances the job's step when the
  // request is the chief's (or when no chief token is set).
  uint64_t RequestStep(const RequestHeader& header, bool chief);
  // Answers ZeroMQ's authentication requests (CURVE) on zap_.
  void AnswerZap();
  absl::Status Save(const std::string& dir, ReplyHeader* reply);
  absl::Status Load(const std::string& dir, ReplyHeader* reply);
  void IoLoop();
  void HandlerLoop(int index);
  void MaybeEvictExpired();
  // Runs part(groups, stripes) over all the table's stripes, in kSplitParts
  // parts (big first, single stripes last) that this thread and any idle
  // handler thread take in turn (each part is run once, by one thread);
  // before its first part, a thread groups blocks of the keys by stripe
  // that no other thread has taken, into one set of groups they share
  // (grouping them each, in full, cost 6-8% of the cores), and waits until
  // all are grouped.
  // Returns the first error.
  using Part = std::function<absl::Status(const SparseTable::KeyGroups&, SparseTable::StripeRange)>;
  absl::Status RunSplit(std::span<const uint64_t> keys, const Part& part);
  absl::Status Attach(const RequestHeader& header, ReplyHeader* reply);
  // The arena a request names, or NotFound.
  absl::StatusOr<std::shared_ptr<const SharedMapping>> Arena(uint64_t id);
  // Unmaps the arenas of clients that have exited without detaching.
  void DropArenasOfExitedClients();
  void LogBadRequest(const std::string& peer, const absl::Status& status);

  PsServerOptions options_;
  std::unique_ptr<KvStore> store_;
  std::string spill_dir_;
  std::unique_ptr<MemoryBudget> budget_;
  absl::flat_hash_map<std::string, std::unique_ptr<SparseTable>> tables_;
  std::unique_ptr<StepSync> step_sync_;  // made with the tables
  std::atomic<uint64_t> max_global_step_{0};
  // Rows skipped for a non-finite gradient, by table id.
  std::unique_ptr<std::atomic<uint64_t>[]> non_finite_skipped_;
  std::atomic<int64_t> last_eviction_ns_{0};
  std::atomic<uint64_t> requests_{0}, bad_requests_{0}, split_wait_ns_{0};
  std::atomic<uint64_t> split_requests_{0};  // started; its count alternates their direction
  std::atomic<uint64_t> split_groupings_alone_{0};

  zmq::context_t context_;
  // Used only by the IO thread once Start() has bound them.
  std::unique_ptr<zmq::socket_t> router_, replies_, zap_;
  std::atomic<uint64_t> zap_refused_{0}, dropped_requests_{0};
  std::string endpoint_;
  std::thread io_thread_;
  std::vector<std::thread> handlers_;
  std::atomic<bool> stopping_{false};

  absl::Mutex queue_mu_;
  std::deque<std::vector<zmq::message_t>> queue_ ABSL_GUARDED_BY(queue_mu_);
  int64_t queued_bytes_ ABSL_GUARDED_BY(queue_mu_) = 0;
  // A request split by stripes (RunSplit). Its owner and any handler thread
  // that finds it in helpers_ take parts until none is left; the owner
  // returns once every thread that joined has left.
  struct Helper {
    std::span<const uint64_t> keys;
    const Part* part;       // the owner's
    bool downward = false;  // parts from the last stripe down
    // The keys grouped by stripe, block by block by the threads that take
    // parts, each claiming the next block not yet claimed; a thread serves
    // its parts once all are grouped (GroupShare). The owner's, prepared:
    // it lives while the owner waits in RunSplit for every joined thread to
    // leave, and the owner serves nothing else meanwhile.
    SparseTable::KeyGroups* groups = nullptr;
    // Written by every thread that joins: a line apart from the fields above.
    alignas(64) std::atomic<size_t> next_block{0};
    std::atomic<size_t> grouped_blocks{0};
    std::atomic<int> next{0};  // next part to take
    int joined = 0;            // threads other than the owner inside; guarded by queue_mu_
    absl::Status status;       // first error of any part; guarded by queue_mu_
  };
  // Runs parts of `work` until none is left, then removes it from helpers_.
  void TakeParts(Helper& work);
  // Groups blocks of work.groups not yet claimed, then waits until every
  // block is grouped and returns them; if another thread's blocks take too
  // long (it was preempted), groups the whole request alone into the
  // thread's own groups and returns those instead.
  const SparseTable::KeyGroups& GroupShare(Helper& work);
  std::deque<Helper*> helpers_ ABSL_GUARDED_BY(queue_mu_);  // taken before requests

  absl::Mutex done_mu_;
  bool done_ ABSL_GUARDED_BY(done_mu_) = false;

  // Shared arenas of clients on this host, by id.
  class ClientWatch;  // tells when the client process has exited
  struct Attachment {
    std::shared_ptr<const SharedMapping> mapping;
    std::unique_ptr<ClientWatch> client;
  };
  absl::Mutex arenas_mu_;
  absl::flat_hash_map<uint64_t, Attachment> arenas_ ABSL_GUARDED_BY(arenas_mu_);

  absl::Mutex checkpoint_mu_;  // one save or load at a time
  absl::Mutex log_mu_;
  absl::flat_hash_set<std::string> logged_peers_ ABSL_GUARDED_BY(log_mu_);
};

}  // namespace ctrps

#endif  // CTRPS_PS_PS_SERVER_H_
