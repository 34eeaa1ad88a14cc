#include "ps/ps_server.h"

#include <poll.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <new>
#include <thread>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/checkpoint_manifest.h"
#include "common/hash.h"
#include "common/row_format.h"
#include "common/status.h"
#include "common/sync_point.h"
#include "glog/logging.h"
#include "zmq_addon.hpp"

namespace ctrps {
namespace {

constexpr char kRepliesEndpoint[] = "inproc://ps-replies";
constexpr int64_t kEvictionIntervalNs = 10'000'000'000;  // TTL sweep every 10 s at most
// Pulls and pushes of at least this many keys are split by stripe into
// parts for the handler threads to share, taken in order: big parts first,
// then smaller ones, down to single stripes at the end (guided
// self-scheduling), so the thread that finishes first waits at most about a
// stripe's work for the other. (Halves left it waiting up to half a request;
// four equal parts served 11-16% more keys/s than halves, median of 10
// alternating ps_bench runs; these parts cut the owner's wait further,
// which ps_bench prints as the owners' wait per split request.)
//
// Split requests alternate the direction they walk the stripes in: a thread
// that finishes its parts of one request starts on the next one while the
// other thread still serves a big part of the first. Walking the same way it
// soon reached those stripes and the two took turns on each stripe's lock,
// sleeping thousands of times a second; walking the other way it meets the
// other thread only near the end, by which time its part is done.
constexpr uint64_t kSplitKeys = 8192;
// Part p, upward: stripes [kPartStripes[p], kPartStripes[p + 1]); downward,
// the same counted from the last stripe.
constexpr int kPartStripes[] = {0, 4, 8, 10, 12, 13, 14, 15, 16};
constexpr int kSplitParts = std::size(kPartStripes) - 1;
static_assert(kPartStripes[kSplitParts] == SparseTable::kNumStripes);
// Control frame in front of a reply on the inproc socket.
constexpr uint8_t kReplyOnly = 0, kReplyThenShutdown = 1;

// Frames are read in place when aligned (large zmq messages are malloc'ed);
// otherwise copied into per-thread scratch.
template <typename T>
const T* AlignedView(const zmq::message_t& m, std::vector<T>* scratch) {
  if (reinterpret_cast<uintptr_t>(m.data()) % alignof(T) == 0) {
    return static_cast<const T*>(m.data());
  }
  scratch->resize(m.size() / sizeof(T));
  std::memcpy(scratch->data(), m.data(), scratch->size() * sizeof(T));
  return scratch->data();
}

}  // namespace

PsServer::PsServer(PsServerOptions options) : options_(std::move(options)), context_(1) {}

PsServer::~PsServer() { Stop(); }

// Watches the process that owns an arena through a pidfd, which polls
// readable once it has exited. A process that cannot be watched (no pidfd
// support, or a path not of the form /proc/<pid>/fd/<n>) counts as alive
// until it detaches.
class PsServer::ClientWatch {
 public:
  explicit ClientWatch(const std::string& arena_path) {
    int pid = 0, fd = 0;
    if (sscanf(arena_path.c_str(), "/proc/%d/fd/%d", &pid, &fd) == 2 && pid > 0) {
      pidfd_ = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
    }
  }
  ~ClientWatch() {
    if (pidfd_ >= 0) close(pidfd_);
  }
  ClientWatch(const ClientWatch&) = delete;
  ClientWatch& operator=(const ClientWatch&) = delete;

  bool Exited() const {
    pollfd p = {pidfd_, POLLIN, 0};
    return pidfd_ >= 0 && poll(&p, 1, 0) == 1;
  }

 private:
  int pidfd_ = -1;
};

absl::Status PsServer::CreateTables() {
  if (!tables_.empty()) return absl::OkStatus();
  budget_ = std::make_unique<MemoryBudget>(options_.memory_limit_bytes);
  if (options_.memory_limit_bytes > 0 && options_.storage_dir.empty()) {
    return absl::InvalidArgumentError("a memory limit needs a storage directory for spilled rows");
  }
  if (!options_.storage_dir.empty()) {
    // A fresh job starts from an empty store (a resumed one loads a
    // checkpoint into it); leftovers of an earlier run would be stale rows.
    std::error_code ec;
    std::filesystem::remove_all(options_.storage_dir, ec);
    ASSIGN_OR_RETURN(store_, OpenRocksDbStore(options_.storage_dir + "/rocksdb"));
    spill_dir_ = options_.storage_dir + "/spill";
    if (!std::filesystem::create_directories(spill_dir_, ec) && ec) {
      return ErrnoError(spill_dir_, "cannot create", ec.value());
    }
  }
  uint32_t id = 0;
  for (const TableConfig& config : options_.tables) {
    SparseTable::Options topts;
    topts.table_id = id++;
    topts.store = store_.get();
    topts.budget = budget_.get();
    topts.spill_dir = spill_dir_;
    topts.min_free_disk_bytes = options_.min_free_disk_bytes;
    topts.spill_segment_bytes = options_.spill_segment_bytes;
    ASSIGN_OR_RETURN(auto table, SparseTable::Create(config, topts));
    if (!tables_.emplace(config.name(), std::move(table)).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("table \"", config.name(), "\" is defined twice"));
    }
  }
  return absl::OkStatus();
}

SparseTable* PsServer::table(const std::string& name) {
  auto it = tables_.find(name);
  return it == tables_.end() ? nullptr : it->second.get();
}

ServerStats PsServer::Stats() {
  ServerStats stats;
  stats.set_shard(options_.shard);
  for (auto& [name, table] : tables_) *stats.add_table() = table->Stats();
  uint64_t bytes = 0;
  for (const TableStats& t : stats.table()) bytes += t.bytes_in_memory();
  stats.set_bytes_in_memory(bytes);
  stats.set_memory_limit_bytes(options_.memory_limit_bytes);
  stats.set_requests(requests_.load());
  stats.set_bad_requests(bad_requests_.load());
  stats.set_split_requests(split_requests_.load());
  stats.set_split_wait_seconds(static_cast<double>(split_wait_ns_.load()) * 1e-9);
  stats.set_split_groupings_alone(split_groupings_alone_.load());
  return stats;
}

absl::Status PsServer::Start() {
  // Each stripe of a table past the memory limit keeps its log's segments
  // open, a file per 64 MB: a table of tens of GB needs more descriptors
  // than the common soft limit of 1024.
  if (rlimit r; getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &r);
  }
  RETURN_IF_ERROR(CreateTables());
  router_ = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::router);
  replies_ = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::pull);
  zmq::socket_t& router = *router_;
  zmq::socket_t& replies = *replies_;
  try {
    router.set(zmq::sockopt::linger, 0);
    router.set(zmq::sockopt::sndhwm, 0);
    router.set(zmq::sockopt::rcvhwm, 0);
    // Hard cap per frame; requests between the soft limit and this get an
    // error reply, larger ones cost the peer its connection.
    router.set(zmq::sockopt::maxmsgsize, options_.max_request_bytes * 2);
    router.bind(options_.bind);
    endpoint_ = router.get(zmq::sockopt::last_endpoint);
    replies.bind(kRepliesEndpoint);
  } catch (const zmq::error_t& e) {
    return absl::UnavailableError(
        absl::StrCat("server ", options_.shard, ": cannot bind ", options_.bind, ": ", e.what()));
  }
  io_thread_ = std::thread([this] { IoLoop(); });
  for (int i = 0; i < options_.threads; ++i) handlers_.emplace_back([this, i] { HandlerLoop(i); });
  return absl::OkStatus();
}

void PsServer::IoLoop() {
  zmq::socket_t& router = *router_;
  zmq::socket_t& replies = *replies_;
  std::vector<zmq::pollitem_t> items = {{router.handle(), 0, ZMQ_POLLIN, 0},
                                        {replies.handle(), 0, ZMQ_POLLIN, 0}};
  std::vector<zmq::message_t> frames;
  bool shutdown = false;
  while (!stopping_.load() && !shutdown) {
    zmq::poll(items, std::chrono::milliseconds(100));
    if (items[1].revents & ZMQ_POLLIN) {
      // Forward every ready reply: [control][identity][frames...].
      while (true) {
        frames.clear();
        if (!zmq::recv_multipart(replies, std::back_inserter(frames), zmq::recv_flags::dontwait))
          break;
        const bool then_shutdown =
            *static_cast<const uint8_t*>(frames[0].data()) == kReplyThenShutdown;
        for (size_t i = 1; i < frames.size(); ++i) {
          router.send(frames[i],
                      i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
        }
        shutdown |= then_shutdown;
      }
    }
    if (items[0].revents & ZMQ_POLLIN) {
      while (true) {
        std::vector<zmq::message_t> request;
        if (!zmq::recv_multipart(router, std::back_inserter(request), zmq::recv_flags::dontwait))
          break;
        {
          absl::MutexLock lock(&queue_mu_);
          queue_.push_back(std::move(request));
        }
      }
    }
  }
  if (shutdown) {
    // The SHUTDOWN reply is still queued: let it reach the peer before the
    // socket goes (Stop() terminates the context, which waits for it).
    router.set(zmq::sockopt::linger, 2000);
  }
  stopping_.store(true);
  absl::MutexLock lock(&done_mu_);
  done_ = true;
}

void PsServer::HandlerLoop(int index) {
  zmq::socket_t out(context_, zmq::socket_type::push);
  out.set(zmq::sockopt::linger, 0);
  out.set(zmq::sockopt::sndhwm, 0);
  out.connect(kRepliesEndpoint);
  std::vector<zmq::message_t> request, reply;
  auto has_work = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(queue_mu_) {
    return !queue_.empty() || !helpers_.empty() || stopping_.load();
  };
  while (true) {
    Helper* work = nullptr;
    {
      absl::MutexLock lock(&queue_mu_);
      // Wakes on work; the timeout only bounds how long Stop() can wait.
      queue_mu_.AwaitWithTimeout(absl::Condition(&has_work), absl::Milliseconds(200));
      if (stopping_.load()) return;
      if (!helpers_.empty()) {
        work = helpers_.front();
        ++work->joined;
      } else if (!queue_.empty()) {
        request = std::move(queue_.front());
        queue_.pop_front();
      } else {
        continue;
      }
    }
    if (work != nullptr) {
      TEST_SYNC_POINT("PsServer::HandlerLoop:Joined");
      TakeParts(*work);
      absl::MutexLock lock(&queue_mu_);
      --work->joined;  // after this the owner may return and free `work`
      continue;
    }
    // request[0] is the routing identity.
    std::string peer = "unknown peer";
    for (auto& frame : request) {  // metadata rides on data frames, not always the identity
      if (const char* addr = zmq_msg_gets(frame.handle(), "Peer-Address"); addr != nullptr) {
        peer = addr;
        break;
      }
    }
    zmq::message_t identity = std::move(request[0]);
    request.erase(request.begin());
    reply.clear();
    bool shutdown = false;
    Handle(request, &reply, &shutdown, peer);
    uint8_t control = shutdown ? kReplyThenShutdown : kReplyOnly;
    out.send(zmq::buffer(&control, 1), zmq::send_flags::sndmore);
    out.send(identity, zmq::send_flags::sndmore);
    for (size_t i = 0; i < reply.size(); ++i) {
      out.send(reply[i], i + 1 < reply.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
    MaybeEvictExpired();
  }
}

void PsServer::Handle(std::vector<zmq::message_t>& request, std::vector<zmq::message_t>* reply,
                      bool* shutdown, const std::string& peer) {
  requests_.fetch_add(1, std::memory_order_relaxed);
  RequestHeader header;
  ReplyHeader reply_header;
  std::vector<zmq::message_t> body;
  absl::Status status;
  int64_t total = 0;
  for (const auto& f : request) total += f.size();
  if (request.empty()) {
    status = absl::InvalidArgumentError("empty request");
  } else if (!header.ParseFromArray(request[0].data(), static_cast<int>(request[0].size()))) {
    status = absl::InvalidArgumentError(
        absl::StrFormat("request header (%d bytes) is not a RequestHeader", request[0].size()));
  } else if (total > options_.max_request_bytes) {
    status = absl::InvalidArgumentError(
        absl::StrFormat("request of %d bytes exceeds the server limit of %d bytes", total,
                        options_.max_request_bytes));
  } else {
    reply_header.set_request_id(header.request_id());
    status = HandleRequest(header, request, &body, &reply_header);
    *shutdown = status.ok() && header.op() == OP_SHUTDOWN;
  }
  if (!status.ok()) {
    bad_requests_.fetch_add(1, std::memory_order_relaxed);
    LogBadRequest(peer, status);
    body.clear();
  }
  reply_header.set_code(static_cast<int>(status.code()));
  if (!status.ok()) reply_header.set_message(std::string(status.message()));
  reply->clear();
  reply->emplace_back(reply_header.SerializeAsString());
  for (auto& m : body) reply->push_back(std::move(m));
}

absl::Status PsServer::HandleRequest(const RequestHeader& header,
                                     std::vector<zmq::message_t>& request,
                                     std::vector<zmq::message_t>* body, ReplyHeader* reply_header) {
  thread_local std::vector<uint64_t> key_scratch;
  thread_local std::vector<float> grad_scratch;
  thread_local std::vector<uint32_t> count_scratch;
  switch (header.op()) {
    case OP_PING:
      return absl::OkStatus();
    case OP_STATS:
      *reply_header->mutable_stats() = Stats();
      return absl::OkStatus();
    case OP_SHUTDOWN:
      return absl::OkStatus();
    case OP_SAVE:
      return Save(header.path(), reply_header);
    case OP_LOAD:
      return Load(header.path(), reply_header);
    case OP_ATTACH:
      return Attach(header, reply_header);
    case OP_DETACH: {
      absl::MutexLock lock(&arenas_mu_);
      auto it = arenas_.find(header.shm_id());
      if (it == arenas_.end())
        return absl::NotFoundError(absl::StrCat("detach: no shared arena ", header.shm_id()));
      arenas_.erase(it);
      return absl::OkStatus();
    }
    case OP_PULL:
    case OP_PUSH:
      break;
    default:
      // proto2 keeps an unknown enum value out of op(): say so rather than "0".
      return absl::InvalidArgumentError(header.has_op()
                                            ? absl::StrCat("unknown op ", Op_Name(header.op()))
                                            : std::string("missing or unknown op"));
  }
  const bool push = header.op() == OP_PUSH;
  const char* op = push ? "push" : "pull";
  SparseTable* t = table(header.table());
  if (t == nullptr)
    return absl::NotFoundError(absl::StrCat(op, ": unknown table \"", header.table(), "\""));
  if (header.dim() != static_cast<uint32_t>(t->dim())) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: table \"%s\" has dim %d, request says %d", op, t->name(), t->dim(), header.dim()));
  }
  const uint64_t n = header.num_keys();
  const uint64_t values = n * t->dim();
  // Where the keys come from, where pulled rows go, where gradients and
  // counts come from: the client's shared arena, or the request's frames
  // and a reply frame.
  const uint64_t* keys = nullptr;
  float* rows = nullptr;
  const float* grads = nullptr;
  const uint32_t* counts = nullptr;
  zmq::message_t rows_frame;
  std::shared_ptr<const SharedMapping> arena;
  if (header.has_shm_id()) {
    // Bulk data in the client's shared arena; the request is the header.
    if (request.size() != 1) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: a request through a shared arena has 1 frame, got %d", op, request.size()));
    }
    ASSIGN_OR_RETURN(arena, Arena(header.shm_id()));
    auto range = [&](const char* what, uint64_t offset, uint64_t count,
                     size_t width) -> absl::StatusOr<std::byte*> {
      std::byte* p =
          count > (uint64_t{1} << 40) ? nullptr : arena->Range(offset, count * width, width);
      if (p == nullptr) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "%s: %s at offset %d (%d bytes) is not inside shared arena %d of %d bytes", op, what,
            offset, count * width, header.shm_id(), arena->size()));
      }
      return p;
    };
    ASSIGN_OR_RETURN(std::byte * k, range("keys", header.shm_keys_offset(), n, sizeof(uint64_t)));
    ASSIGN_OR_RETURN(std::byte * v,
                     range("values", header.shm_values_offset(), values, sizeof(float)));
    // The keys are copied: the threads serving the request group them,
    // then the table reads them again, and all must see the same keys
    // whatever the client does to its memory.
    key_scratch.resize(n);
    std::memcpy(key_scratch.data(), k, n * sizeof(uint64_t));
    keys = key_scratch.data();
    rows = reinterpret_cast<float*>(v);
    grads = rows;
    if (push && header.has_counts()) {
      ASSIGN_OR_RETURN(std::byte * c,
                       range("counts", header.shm_counts_offset(), n, sizeof(uint32_t)));
      counts = reinterpret_cast<const uint32_t*>(c);
    }
  } else {
    const size_t expected_frames = push ? (header.has_counts() ? 4 : 3) : 2;
    if (request.size() != expected_frames) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: expected %d frames, got %d", op, expected_frames, request.size()));
    }
    if (request[1].size() != n * sizeof(uint64_t)) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: num_keys %d needs a keys frame of %d bytes, got %d", op, n, n * 8,
                          request[1].size()));
    }
    keys = AlignedView<uint64_t>(request[1], &key_scratch);
    if (!push) {
      // Aligned so that rows of dim 16 are whole lines, which the table
      // writes without reading them first.
      constexpr std::align_val_t kAlign{SparseTable::kLineBytes};
      void* data = ::operator new(values * sizeof(float), kAlign);
      rows_frame = zmq::message_t(
          data, values * sizeof(float), [](void* d, void*) { ::operator delete(d, kAlign); },
          nullptr);
      rows = static_cast<float*>(rows_frame.data());
    } else {
      if (request[2].size() != values * sizeof(float)) {
        return absl::InvalidArgumentError(
            absl::StrFormat("push: %d keys of dim %d need %d gradient bytes, got %d", n, t->dim(),
                            values * 4, request[2].size()));
      }
      grads = AlignedView<float>(request[2], &grad_scratch);
      if (header.has_counts()) {
        if (request[3].size() != n * sizeof(uint32_t)) {
          return absl::InvalidArgumentError(absl::StrFormat(
              "push: %d keys need %d count bytes, got %d", n, n * 4, request[3].size()));
        }
        counts = AlignedView<uint32_t>(request[3], &count_scratch);
      }
    }
  }
  reply_header->set_num_keys(n);
  reply_header->set_dim(t->dim());
  uint64_t step = header.global_step();
  uint64_t prev = max_global_step_.load(std::memory_order_relaxed);
  while (step > prev && !max_global_step_.compare_exchange_weak(prev, step)) {
  }
  if (!(header.learning_rate_scale() > 0 && header.learning_rate_scale() <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: learning_rate_scale must be in (0, 1], got %g", push ? "push" : "pull",
                        header.learning_rate_scale()));
  }
  if (!push) {
    RETURN_IF_ERROR(
        RunSplit({keys, n}, [&](const SparseTable::KeyGroups& groups, SparseTable::StripeRange r) {
          return t->Pull(groups, rows, r, header.l2_catch_up_to(), header.learning_rate_scale());
        }));
    if (arena == nullptr) body->push_back(std::move(rows_frame));
    return absl::OkStatus();
  }
  if (!(header.batch_fraction() > 0 && header.batch_fraction() <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("push: batch_fraction must be in (0, 1], got %g", header.batch_fraction()));
  }
  const float lr_scale = header.learning_rate_scale(), fraction = header.batch_fraction();
  return RunSplit({keys, n}, [&](const SparseTable::KeyGroups& groups, SparseTable::StripeRange r) {
    return t->Push(groups, grads, counts, step, lr_scale, fraction, r);
  });
}

absl::Status PsServer::Save(const std::string& dir, ReplyHeader* reply) {
  if (dir.empty()) return absl::InvalidArgumentError("save: no path");
  if (store_ == nullptr)
    return absl::FailedPreconditionError("save: this server has no storage directory");
  const auto start = std::chrono::steady_clock::now();
  absl::MutexLock lock(&checkpoint_mu_);
  uint64_t rows = 0;
  for (auto& [name, table] : tables_) {
    ASSIGN_OR_RETURN(uint64_t n, table->Flush());
    rows += n;
  }
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(dir).parent_path(), ec);
  RETURN_IF_ERROR(store_->Checkpoint(dir));
  reply->set_rows(rows);
  reply->set_seconds(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  VLOG(1) << "server " << options_.shard << ": checkpoint " << dir << ": " << rows
          << " rows written in " << reply->seconds() << " s";
  return absl::OkStatus();
}

absl::Status PsServer::Load(const std::string& dir, ReplyHeader* reply) {
  if (dir.empty()) return absl::InvalidArgumentError("load: no path");
  if (store_ == nullptr)
    return absl::FailedPreconditionError("load: this server has no storage directory");
  const auto start = std::chrono::steady_clock::now();
  absl::MutexLock lock(&checkpoint_mu_);
  for (auto& [name, table] : tables_) {
    TableStats st = table->Stats();
    if (st.rows_in_memory() + st.rows_on_disk() > 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("load: table \"", name, "\" already has rows"));
    }
  }
  ASSIGN_OR_RETURN(CheckpointManifest manifest, ReadCheckpointManifest(dir));
  // Old table id -> this server's table; shapes must agree.
  absl::flat_hash_map<uint32_t, SparseTable*> by_id;
  for (const CheckpointTable& ct : manifest.table()) {
    SparseTable* t = table(ct.name());
    if (t == nullptr)
      return absl::InvalidArgumentError(
          absl::StrCat(dir, ": table \"", ct.name(), "\" is not in this job's config"));
    if (static_cast<int>(ct.dim()) != t->dim() ||
        static_cast<int>(ct.state_dim()) != t->state_dim()) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: table \"%s\" was saved with dim %d and optimizer state %d; this job has %d and %d",
          dir, ct.name(), ct.dim(), ct.state_dim(), t->dim(), t->state_dim()));
    }
    by_id[ct.id()] = t;
  }
  absl::flat_hash_map<SparseTable*, uint64_t> loaded;
  std::vector<std::string> keys, values;
  std::vector<KvStore::Op> ops;
  auto flush = [&]() -> absl::Status {
    ops.clear();
    for (size_t i = 0; i < keys.size(); ++i) ops.push_back({keys[i], values[i], false});
    RETURN_IF_ERROR(store_->Write(ops));
    keys.clear();
    values.clear();
    return absl::OkStatus();
  };
  for (uint32_t j = 0; j < manifest.num_servers(); ++j) {
    const std::string part = absl::StrCat(dir, "/server-", j);
    RETURN_IF_ERROR(ScanRocksDb(part, [&](std::string_view k, std::string_view v) -> absl::Status {
      uint32_t id = 0;
      uint64_t key = 0;
      if (!DecodeRowKey(k, &id, &key)) {
        return absl::DataLossError(absl::StrCat(part, ": a key of ", k.size(), " bytes"));
      }
      if (ShardOf(key, options_.num_shards) != options_.shard) return absl::OkStatus();
      auto it = by_id.find(id);
      if (it == by_id.end())
        return absl::DataLossError(absl::StrCat(part, ": a row of unknown table id ", id));
      SparseTable* t = it->second;
      if (v.size() != t->row_bytes()) {
        return absl::DataLossError(
            absl::StrFormat("%s: a row of table \"%s\" has %d bytes, expected %d", part, t->name(),
                            v.size(), t->row_bytes()));
      }
      keys.push_back(EncodeRowKey(t->table_id(), key));
      values.emplace_back(v);
      ++loaded[t];
      if (keys.size() >= 65536) return flush();
      return absl::OkStatus();
    }));
  }
  RETURN_IF_ERROR(flush());
  uint64_t rows = 0;
  for (auto& [t, n] : loaded) {
    t->AddLoadedRows(n);
    rows += n;
  }
  reply->set_rows(rows);
  reply->set_seconds(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  LOG(INFO) << "server " << options_.shard << "/" << options_.num_shards << ": loaded " << rows
            << " rows from " << dir << " (" << manifest.num_servers() << " servers) in "
            << reply->seconds() << " s";
  return absl::OkStatus();
}

namespace {
thread_local SparseTable::KeyGroups tls_key_groups;    // of the requests this thread owns
thread_local SparseTable::KeyGroups tls_alone_groups;  // GroupShare's fallback
// How long a thread that has grouped its share of a split request spins,
// then yields, waiting for the others' shares, before it groups the whole
// request alone. A block takes a few microseconds; a thread that takes much
// longer was preempted. (Spinning alone, a tenth of the split requests
// were grouped alone; yielding as well, under 1%: most likely the waiting
// thread had been woken onto the core of the one it waited for.)
constexpr auto kGroupShareSpin = std::chrono::microseconds(10);
constexpr auto kGroupShareWait = std::chrono::microseconds(200);
}  // namespace

absl::Status PsServer::RunSplit(std::span<const uint64_t> keys, const Part& part) {
  // Small requests are not worth a hand-over.
  if (options_.threads < 2 || keys.size() < kSplitKeys) {
    tls_key_groups.Assign(keys);
    return part(tls_key_groups, SparseTable::kAllStripes);
  }
  Helper work;
  work.keys = keys;
  work.part = &part;
  tls_key_groups.Prepare(keys);
  work.groups = &tls_key_groups;
  // Every second one walks downward.
  work.downward = split_requests_.fetch_add(1, std::memory_order_relaxed) % 2 == 1;
  {
    absl::MutexLock lock(&queue_mu_);
    helpers_.push_back(&work);
  }
  TEST_SYNC_POINT("PsServer::RunSplit:Published");
  TakeParts(work);
  auto joined_left = [&work]()
                         ABSL_EXCLUSIVE_LOCKS_REQUIRED(queue_mu_) { return work.joined == 0; };
  const auto waiting = std::chrono::steady_clock::now();
  absl::MutexLock lock(&queue_mu_);
  queue_mu_.Await(absl::Condition(&joined_left));
  const auto waited = std::chrono::steady_clock::now() - waiting;
  split_wait_ns_.fetch_add(std::chrono::duration_cast<std::chrono::nanoseconds>(waited).count(),
                           std::memory_order_relaxed);
  return work.status;
}

void PsServer::TakeParts(Helper& work) {
  const SparseTable::KeyGroups* groups = nullptr;
  for (int p; (p = work.next.fetch_add(1, std::memory_order_relaxed)) < kSplitParts;) {
    if (groups == nullptr) groups = &GroupShare(work);
    constexpr int kLast = SparseTable::kNumStripes;
    const SparseTable::StripeRange range =
        work.downward
            ? SparseTable::StripeRange{kLast - kPartStripes[p + 1], kLast - kPartStripes[p]}
            : SparseTable::StripeRange{kPartStripes[p], kPartStripes[p + 1]};
    absl::Status status = (*work.part)(*groups, range);
    if (!status.ok()) {
      absl::MutexLock lock(&queue_mu_);
      work.status.Update(status);
    }
  }
  // Every part is taken: no thread may join from now on, and idle threads
  // must not find it and spin. (Whichever thread gets here first removes it.)
  absl::MutexLock lock(&queue_mu_);
  if (auto it = std::find(helpers_.begin(), helpers_.end(), &work); it != helpers_.end())
    helpers_.erase(it);
}

const SparseTable::KeyGroups& PsServer::GroupShare(Helper& work) {
  const size_t blocks = work.groups->num_blocks();
  for (size_t b; (b = work.next_block.fetch_add(1, std::memory_order_relaxed)) < blocks;) {
    TEST_SYNC_POINT_CALLBACK("PsServer::GroupShare:BeforeBlock", &b);
    work.groups->GroupBlock(b);
    work.grouped_blocks.fetch_add(1, std::memory_order_release);
  }
  // Every block is claimed; the threads still grouping finish theirs within
  // microseconds, unless one was preempted (likely by this thread, woken
  // onto its core): after a short spin this gives way, and past the
  // deadline it stops waiting.
  const auto start = std::chrono::steady_clock::now();
  while (work.grouped_blocks.load(std::memory_order_acquire) < blocks) {
#if defined(__x86_64__)
    for (int i = 0; i < 32; ++i) _mm_pause();
#endif
    const auto waited = std::chrono::steady_clock::now() - start;
    if (waited > kGroupShareSpin) std::this_thread::yield();
    if (waited > kGroupShareWait) {
      split_groupings_alone_.fetch_add(1, std::memory_order_relaxed);
      TEST_SYNC_POINT("PsServer::GroupShare:Alone");
      tls_alone_groups.Assign(work.keys);
      return tls_alone_groups;
    }
  }
  return *work.groups;
}

absl::Status PsServer::Attach(const RequestHeader& header, ReplyHeader* reply) {
  // Clients that exited without detaching give up their places first, not
  // only at the next periodic sweep.
  DropArenasOfExitedClients();
  {
    absl::MutexLock lock(&arenas_mu_);
    if (arenas_.size() >= static_cast<size_t>(options_.max_arenas)) {
      return absl::ResourceExhaustedError(
          absl::StrCat("attach: this server already maps ", arenas_.size(), " shared arenas"));
    }
  }
  ASSIGN_OR_RETURN(std::unique_ptr<SharedMapping> mapping,
                   SharedMapping::Open(header.shm_path(), header.shm_token(), header.shm_bytes()));
  // The arena is the client's: watch the client, so that one which exits
  // without detaching does not keep the memory mapped here.
  auto client = std::make_unique<ClientWatch>(header.shm_path());
  absl::MutexLock lock(&arenas_mu_);
  const uint64_t id = next_arena_id_++;
  arenas_[id] = {std::shared_ptr<const SharedMapping>(std::move(mapping)), std::move(client)};
  reply->set_shm_id(id);
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<const SharedMapping>> PsServer::Arena(uint64_t id) {
  absl::MutexLock lock(&arenas_mu_);
  auto it = arenas_.find(id);
  if (it == arenas_.end())
    return absl::NotFoundError(absl::StrCat("no shared arena ", id, " is attached"));
  return it->second.mapping;
}

void PsServer::DropArenasOfExitedClients() {
  absl::MutexLock lock(&arenas_mu_);
  absl::erase_if(arenas_, [](const auto& entry) { return entry.second.client->Exited(); });
}

void PsServer::MaybeEvictExpired() {
  int64_t now = std::chrono::steady_clock::now().time_since_epoch().count();
  int64_t last = last_eviction_ns_.load(std::memory_order_relaxed);
  if (now - last < kEvictionIntervalNs) return;
  if (!last_eviction_ns_.compare_exchange_strong(last, now)) return;  // another thread does it
  DropArenasOfExitedClients();
  for (auto& [name, table] : tables_) {
    auto dropped = table->EvictExpired(max_global_step_.load());
    if (!dropped.ok()) {
      LOG(ERROR) << "server " << options_.shard << ": TTL eviction of table \"" << name
                 << "\" failed: " << dropped.status();
    } else if (*dropped > 0) {
      VLOG(1) << "server " << options_.shard << ": table \"" << name << "\": " << *dropped
              << " rows past their TTL dropped";
    }
  }
}

void PsServer::LogBadRequest(const std::string& peer, const absl::Status& status) {
  absl::MutexLock lock(&log_mu_);
  if (logged_peers_.insert(peer).second) {
    LOG(WARNING) << "server " << options_.shard << ": bad request from " << peer << ": " << status
                 << " (further bad requests from this peer are counted, not logged)";
  }
}

void PsServer::Wait() {
  absl::MutexLock lock(&done_mu_);
  done_mu_.Await(absl::Condition(&done_));
}

void PsServer::Stop() {
  stopping_.store(true);
  if (io_thread_.joinable()) io_thread_.join();
  for (auto& t : handlers_) {
    if (t.joinable()) t.join();
  }
  handlers_.clear();
  router_.reset();
  replies_.reset();
  context_.close();  // waits for queued replies within each socket's linger
}

}  // namespace ctrps
