#include "ps/ps_server.h"

#include <poll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <new>
#include <optional>
#include <random>
#include <thread>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/all_finite.h"
#include "common/checkpoint_manifest.h"
#include "common/hash.h"
#include "common/row_format.h"
#include "common/security.h"
#include "common/status.h"
#include "common/sync_point.h"
#include "glog/logging.h"
#include "zmq_addon.hpp"

namespace ctrps {
namespace {

constexpr char kRepliesEndpoint[] = "inproc://ps-replies";
// Where libzmq sends its authentication requests (RFC 27, ZAP).
constexpr char kZapEndpoint[] = "inproc://zeromq.zap.01";
// max_request_bytes is held to this, so that products of it stay in 64 bits.
constexpr int64_t kMaxRequestBytesLimit = int64_t{1} << 40;
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

PsServer::PsServer(PsServerOptions options) : options_(std::move(options)), context_(1) {
  options_.max_request_bytes =
      std::clamp<int64_t>(options_.max_request_bytes, 1024, kMaxRequestBytesLimit);
}

// n * width in bytes, or nullopt when it does not fit in 64 bits.
static std::optional<uint64_t> CheckedBytes(uint64_t n, uint64_t width) {
  uint64_t out;
  if (__builtin_mul_overflow(n, width, &out)) return std::nullopt;
  return out;
}

PsServer::~PsServer() { Stop(); }

// Watches the process that owns an arena through a pidfd, which polls
// readable once it has exited. A process that cannot be watched (no pidfd
// support, or a path not of the form /proc/<pid>/fd/<n>) counts as alive
// until it detaches.
class PsServer::ClientWatch {
 public:
  explicit ClientWatch(const std::string& arena_path) {
    int pid = 0, fd = 0;
    int end = 0;
    if (sscanf(arena_path.c_str(), "/proc/%d/fd/%d%n", &pid, &fd, &end) == 2 && pid > 0 &&
        fd >= 0 && static_cast<size_t>(end) == arena_path.size()) {
      pidfd_ = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
    }
  }
  bool watching() const { return pidfd_ >= 0; }
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
  std::vector<std::pair<std::string, int>> names;
  for (const TableConfig& config : options_.tables) names.emplace_back(config.name(), config.dim());
  step_sync_ = std::make_unique<StepSync>(
      options_.step_sync, names,
      [this](const std::string& name, std::span<const uint64_t> keys, const float* grads,
             const uint32_t* counts, uint64_t step, float lr_scale, float fraction) {
        SparseTable* t = table(name);
        return RunSplit(keys,
                        [&](const SparseTable::KeyGroups& groups, SparseTable::StripeRange r) {
                          return t->Push(groups, grads, counts, step, lr_scale, fraction, r);
                        });
      });
  uint32_t id = 0;
  non_finite_skipped_ = std::make_unique<std::atomic<uint64_t>[]>(options_.tables.size());
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
  for (auto& [name, table] : tables_) {
    TableStats* t = stats.add_table();
    *t = table->Stats();
    t->set_non_finite_rows_skipped(non_finite_skipped_[table->table_id()].load());
  }
  uint64_t bytes = 0;
  for (const TableStats& t : stats.table()) bytes += t.bytes_in_memory();
  stats.set_bytes_in_memory(bytes);
  stats.set_memory_limit_bytes(options_.memory_limit_bytes);
  stats.set_requests(requests_.load());
  stats.set_bad_requests(bad_requests_.load());
  stats.set_refused_handshakes(zap_refused_.load());
  stats.set_dropped_requests(dropped_requests_.load());
  stats.set_split_requests(split_requests_.load());
  stats.set_split_wait_seconds(static_cast<double>(split_wait_ns_.load()) * 1e-9);
  stats.set_split_groupings_alone(split_groupings_alone_.load());
  if (step_sync_ != nullptr) step_sync_->FillStats(&stats);
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
  const bool curve =
      !options_.curve_server_secret_key.empty() && !options_.curve_client_public_key.empty();
  if (curve && !CurveAvailable()) {
    return absl::FailedPreconditionError(
        absl::StrCat("server ", options_.shard, ": CURVE is asked for but this libzmq lacks it"));
  }
  try {
    if (curve) {
      // Bound before the router, so that no handshake can pass unchecked.
      zap_ = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::rep);
      zap_->set(zmq::sockopt::linger, 0);
      zap_->bind(kZapEndpoint);
      router.set(zmq::sockopt::curve_server, true);
      router.set(zmq::sockopt::curve_secretkey, options_.curve_server_secret_key);
      router.set(zmq::sockopt::zap_domain, "ctrps");
    }
    router.set(zmq::sockopt::linger, 0);
    // Bounded queues both ways: a peer that does not read its replies has
    // its requests held back (IoLoop), and one that sends faster than
    // requests are served is held back by TCP.
    router.set(zmq::sockopt::sndhwm, options_.reply_high_water_mark);
    router.set(zmq::sockopt::rcvhwm, options_.request_high_water_mark);
    // A reply the peer's connection cannot take is kept (IoLoop), not lost.
    router.set(zmq::sockopt::router_mandatory, true);
    // No frame can be larger than a whole request: ZeroMQ drops the
    // connection when a frame's header announces more, before buffering it.
    router.set(zmq::sockopt::maxmsgsize, options_.max_request_bytes);
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
  if (zap_ != nullptr) items.push_back({zap_->handle(), 0, ZMQ_POLLIN, 0});
  std::vector<zmq::message_t> frames;
  bool shutdown = false;
  // Requests queued for the handlers are bounded: past this many, or this
  // many bytes, the router is not read, its queues fill to the high-water
  // mark and TCP holds the senders back.
  const size_t max_queued = static_cast<size_t>(std::max(16, 4 * options_.threads));
  const int64_t max_queued_bytes = 2 * options_.max_request_bytes;
  // A peer that does not read its replies: once its connection holds
  // reply_high_water_mark of them, the next replies wait here and its
  // further requests are held back unserved (up to
  // max_held_bytes_per_peer; past that they are dropped), so a client that
  // never reads costs what its requests take, not what their replies would.
  // A slow reader loses nothing: its requests are served as it reads.
  struct Blocked {
    std::deque<std::vector<zmq::message_t>> replies;  // [identity][frames...]
    std::deque<std::vector<zmq::message_t>> requests;
    int64_t request_bytes = 0;
  };
  absl::flat_hash_map<std::string, Blocked> blocked;
  enum class Sent { kSent, kFull, kGone };
  auto send = [&router](std::vector<zmq::message_t>& f, size_t first) {
    try {
      if (!router.send(f[first], zmq::send_flags::sndmore | zmq::send_flags::dontwait))
        return Sent::kFull;
    } catch (const zmq::error_t&) {
      return Sent::kGone;  // EHOSTUNREACH: the peer has disconnected
    }
    for (size_t i = first + 1; i < f.size(); ++i) {
      router.send(f[i], i + 1 < f.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
    return Sent::kSent;
  };
  auto bytes_of = [](const std::vector<zmq::message_t>& f) {
    int64_t bytes = 0;
    for (const auto& m : f) bytes += static_cast<int64_t>(m.size());
    return bytes;
  };
  auto enqueue = [&](std::vector<zmq::message_t> request) {
    absl::MutexLock lock(&queue_mu_);
    queued_bytes_ += bytes_of(request);
    queue_.push_back(std::move(request));
  };
  auto hold = [&](Blocked& b, std::vector<zmq::message_t> request) {
    const int64_t bytes = bytes_of(request);
    if (b.request_bytes + bytes > options_.max_held_bytes_per_peer) {
      dropped_requests_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    b.request_bytes += bytes;
    b.requests.push_back(std::move(request));
  };
  while (!stopping_.load() && !shutdown) {
    bool queue_full;
    {
      absl::MutexLock lock(&queue_mu_);
      queue_full = queue_.size() >= max_queued || queued_bytes_ >= max_queued_bytes;
    }
    items[0].events = queue_full ? 0 : ZMQ_POLLIN;
    zmq::poll(items, std::chrono::milliseconds(queue_full || !blocked.empty() ? 2 : 100));
    if (items.size() > 2 && (items[2].revents & ZMQ_POLLIN)) AnswerZap();
    // Peers that were not reading: send what they now take; once a peer
    // has taken every waiting reply, serve its held requests.
    for (auto it = blocked.begin(); it != blocked.end();) {
      Blocked& b = it->second;
      Sent sent = Sent::kSent;
      while (!b.replies.empty() && (sent = send(b.replies.front(), 0)) == Sent::kSent) {
        b.replies.pop_front();
      }
      if (sent == Sent::kFull) {
        ++it;
        continue;
      }
      if (sent == Sent::kSent) {
        for (auto& r : b.requests) enqueue(std::move(r));
      }
      blocked.erase(it++);
    }
    if (items[1].revents & ZMQ_POLLIN) {
      // Forward every ready reply: [control][identity][frames...].
      while (true) {
        frames.clear();
        if (!zmq::recv_multipart(replies, std::back_inserter(frames), zmq::recv_flags::dontwait))
          break;
        shutdown |= *static_cast<const uint8_t*>(frames[0].data()) == kReplyThenShutdown;
        std::string peer = frames[1].to_string();
        if (auto it = blocked.find(peer); it != blocked.end()) {
          it->second.replies.emplace_back(std::make_move_iterator(frames.begin() + 1),
                                          std::make_move_iterator(frames.end()));
          continue;
        }
        if (send(frames, 1) != Sent::kFull) continue;
        Blocked& b = blocked[peer];
        b.replies.emplace_back(std::make_move_iterator(frames.begin() + 1),
                               std::make_move_iterator(frames.end()));
        // Its requests not yet taken by a handler wait too.
        absl::MutexLock lock(&queue_mu_);
        for (auto q = queue_.begin(); q != queue_.end();) {
          if ((*q)[0].to_string() != peer) {
            ++q;
            continue;
          }
          queued_bytes_ -= bytes_of(*q);
          hold(b, std::move(*q));
          q = queue_.erase(q);
        }
      }
    }
    if (items[0].revents & ZMQ_POLLIN) {
      while (true) {
        std::vector<zmq::message_t> request;
        if (!zmq::recv_multipart(router, std::back_inserter(request), zmq::recv_flags::dontwait))
          break;
        if (auto it = blocked.find(request[0].to_string()); it != blocked.end()) {
          hold(it->second, std::move(request));
          continue;
        }
        enqueue(std::move(request));
        absl::MutexLock lock(&queue_mu_);
        if (queue_.size() >= max_queued || queued_bytes_ >= max_queued_bytes) break;
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
  StepSync::Release release;
  while (true) {
    Helper* work = nullptr;
    if (step_sync_->enabled()) {
      step_sync_->Expire(absl::Now(), &release);
      if (!release.empty()) Dispatch(release, out);
    }
    {
      absl::MutexLock lock(&queue_mu_);
      // Wakes on work; the timeout bounds how long Stop() can wait and how
      // late a step-tracking deadline is noticed.
      queue_mu_.AwaitWithTimeout(absl::Condition(&has_work),
                                 absl::Milliseconds(step_sync_->enabled() ? 50 : 200));
      if (stopping_.load()) return;
      if (!helpers_.empty()) {
        work = helpers_.front();
        ++work->joined;
      } else if (!queue_.empty()) {
        request = std::move(queue_.front());
        queue_.pop_front();
        for (const auto& f : request) queued_bytes_ -= static_cast<int64_t>(f.size());
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
    if (step_sync_->enabled() && request.size() >= 2) {
      // A training pull that must wait for a step is held, not served.
      // Only a request of the job may be held: one without the job's
      // secret goes on to HandleFramed, which refuses it.
      RequestHeader header;
      bool chief = false;
      if (header.ParseFromArray(request[1].data(), static_cast<int>(request[1].size())) &&
          header.op() == OP_PULL && header.has_sync_wait_step() && Authorize(header, &chief).ok() &&
          table(header.table()) && step_sync_->Validate(header).ok() &&
          !step_sync_->HoldPull(header, request, &release)) {
        if (!release.empty()) Dispatch(release, out);
        continue;
      }
    }
    zmq::message_t identity = std::move(request[0]);
    request.erase(request.begin());
    reply.clear();
    bool shutdown = false;
    Deferral deferral{&identity, &release};
    HandleFramed(request, &reply, &shutdown, peer, &deferral);
    if (!release.empty()) Dispatch(release, out);
    if (deferral.deferred) continue;
    uint8_t control = shutdown ? kReplyThenShutdown : kReplyOnly;
    out.send(zmq::buffer(&control, 1), zmq::send_flags::sndmore);
    out.send(identity, zmq::send_flags::sndmore);
    for (size_t i = 0; i < reply.size(); ++i) {
      out.send(reply[i], i + 1 < reply.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
    MaybeEvictExpired();
  }
}

void PsServer::Dispatch(StepSync::Release& release, zmq::socket_t& out) {
  for (StepSync::Release::Reply& r : release.replies) {
    ReplyHeader h;
    h.set_request_id(r.request_id);
    h.set_code(static_cast<int>(r.status.code()));
    if (!r.status.ok()) h.set_message(std::string(r.status.message()));
    const uint8_t control = kReplyOnly;
    out.send(zmq::buffer(&control, 1), zmq::send_flags::sndmore);
    out.send(r.identity, zmq::send_flags::sndmore);
    out.send(zmq::message_t(h.SerializeAsString()), zmq::send_flags::none);
  }
  release.replies.clear();
  if (!release.serve.empty()) {
    absl::MutexLock lock(&queue_mu_);
    for (auto it = release.serve.rbegin(); it != release.serve.rend(); ++it) {
      // Counted as queued again: taking it off the queue uncounts it.
      for (const auto& f : *it) queued_bytes_ += static_cast<int64_t>(f.size());
      queue_.push_front(std::move(*it));
    }
  }
  release.serve.clear();
}

void PsServer::Handle(std::vector<zmq::message_t>& request, std::vector<zmq::message_t>* reply,
                      bool* shutdown, const std::string& peer) {
  HandleFramed(request, reply, shutdown, peer, nullptr);
}

void PsServer::HandleFramed(std::vector<zmq::message_t>& request,
                            std::vector<zmq::message_t>* reply, bool* shutdown,
                            const std::string& peer, Deferral* deferral) {
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
    status = HandleRequest(header, request, &body, &reply_header, deferral);
    *shutdown = status.ok() && header.op() == OP_SHUTDOWN;
    if (status.ok() && deferral != nullptr && deferral->deferred) return;
  }
  if (!status.ok()) {
    bad_requests_.fetch_add(1, std::memory_order_relaxed);
    // The request's fault, or this server's (a disk, the store, memory)?
    switch (status.code()) {
      case absl::StatusCode::kInvalidArgument:
      case absl::StatusCode::kNotFound:
      case absl::StatusCode::kPermissionDenied:
      case absl::StatusCode::kUnauthenticated:
      case absl::StatusCode::kFailedPrecondition:
      case absl::StatusCode::kAlreadyExists:
      case absl::StatusCode::kOutOfRange:
        LogBadRequest(peer, status);
        break;
      default:
        LOG(ERROR) << "server " << options_.shard << ": failed to serve " << Op_Name(header.op())
                   << " from " << peer << ": " << status;
    }
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
                                     std::vector<zmq::message_t>* body, ReplyHeader* reply_header,
                                     Deferral* deferral) {
  thread_local std::vector<uint64_t> key_scratch;
  thread_local std::vector<float> grad_scratch;
  thread_local std::vector<uint32_t> count_scratch;
  bool chief = false;
  RETURN_IF_ERROR(Authorize(header, &chief));
  switch (header.op()) {
    case OP_PING:
      return absl::OkStatus();
    case OP_STATS:
      *reply_header->mutable_stats() = Stats();
      return absl::OkStatus();
    case OP_SHUTDOWN:
      return absl::OkStatus();
    case OP_SAVE:
      RETURN_IF_ERROR(CheckCheckpointPath(header.path()));
      return Save(header.path(), reply_header);
    case OP_LOAD:
      RETURN_IF_ERROR(CheckCheckpointPath(header.path()));
      return Load(header.path(), reply_header);
    case OP_ATTACH:
      return Attach(header, reply_header);
    case OP_DETACH: {
      // The id is the capability: random, known only to the client that
      // attached.
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
  // Every size below is checked against the limit before anything is
  // sized by it, in arithmetic that cannot wrap.
  const uint64_t n = header.num_keys();
  const uint64_t max_bytes = static_cast<uint64_t>(options_.max_request_bytes);
  if (n > max_bytes / sizeof(uint64_t)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: num_keys %d is over this server's limit of %d keys a request", op, n,
                        max_bytes / sizeof(uint64_t)));
  }
  const std::optional<uint64_t> values_or = CheckedBytes(n, static_cast<uint64_t>(t->dim()));
  const std::optional<uint64_t> value_bytes =
      values_or ? CheckedBytes(*values_or, sizeof(float)) : std::nullopt;
  if (!value_bytes || *value_bytes > max_bytes) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: %d keys of dim %d are over this server's limit of %d bytes a request",
                        op, n, t->dim(), max_bytes));
  }
  const uint64_t values = *values_or;
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
      const std::optional<uint64_t> bytes = CheckedBytes(count, width);
      std::byte* p = bytes ? arena->Range(offset, *bytes, width) : nullptr;
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
  const bool tagged = step_sync_->enabled() && header.has_sync_worker();
  if (tagged) RETURN_IF_ERROR(step_sync_->Validate(header));
  if (!(header.learning_rate_scale() > 0 && header.learning_rate_scale() <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: learning_rate_scale must be in (0, 1], got %g", push ? "push" : "pull",
                        header.learning_rate_scale()));
  }
  if (push && !(header.batch_fraction() > 0 && header.batch_fraction() <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("push: batch_fraction must be in (0, 1], got %g", header.batch_fraction()));
  }
  // The job's step (TTL's clock) moves only for a request that passed the
  // checks above.
  const uint64_t step = RequestStep(header, chief);
  if (!push) {
    if (tagged) step_sync_->CountServedPull(header);
    RETURN_IF_ERROR(
        RunSplit({keys, n}, [&](const SparseTable::KeyGroups& groups, SparseTable::StripeRange r) {
          return t->Pull(groups, rows, r, header.l2_catch_up_to(), header.learning_rate_scale());
        }));
    if (arena == nullptr) body->push_back(std::move(rows_frame));
    return absl::OkStatus();
  }
  const float lr_scale = header.learning_rate_scale(), fraction = header.batch_fraction();
  // No NaN or infinity reaches a row: one pass over the gradients, rows
  // looked at one by one only when it finds one.
  const int dim = t->dim();
  auto row_finite = [&](uint64_t i) { return AllFinite(grads + i * dim, dim); };
  const uint64_t* push_keys = keys;
  const float* push_grads = grads;
  const uint32_t* push_counts = counts;
  uint64_t push_n = n;
  if (!AllFinite(grads, values)) {
    uint64_t first = 0;
    while (first < n && row_finite(first)) ++first;
    if (t->config().non_finite_gradients() != TableConfig::SKIP_NON_FINITE) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "push: table \"%s\": the gradient of key %d (row %d of %d) is not finite; nothing "
          "was applied",
          t->name(), keys[first], first, n));
    }
    // Push the finite rows only, from copies.
    thread_local std::vector<uint64_t> kept_keys;
    thread_local std::vector<float> kept_grads;
    thread_local std::vector<uint32_t> kept_counts;
    kept_keys.clear();
    kept_grads.clear();
    kept_counts.clear();
    for (uint64_t i = 0; i < n; ++i) {
      if (i >= first && !row_finite(i)) continue;
      kept_keys.push_back(keys[i]);
      kept_grads.insert(kept_grads.end(), grads + i * dim, grads + (i + 1) * dim);
      if (counts != nullptr) kept_counts.push_back(counts[i]);
    }
    non_finite_skipped_[t->table_id()].fetch_add(n - kept_keys.size(), std::memory_order_relaxed);
    push_keys = kept_keys.data();
    push_grads = kept_grads.data();
    push_counts = counts != nullptr ? kept_counts.data() : nullptr;
    push_n = kept_keys.size();
  }
  StepSync::Release local_release;
  StepSync::Release* release = deferral != nullptr ? deferral->release : &local_release;
  if (tagged && step_sync_->mode() == TrainConfig::SYNC && deferral != nullptr) {
    ASSIGN_OR_RETURN(bool held, step_sync_->Push(header, {push_keys, push_n}, push_grads,
                                                 push_counts, deferral->identity, release));
    if (held) {
      deferral->deferred = true;
      return absl::OkStatus();
    }
  }
  if (push_n > 0) {
    RETURN_IF_ERROR(RunSplit(
        {push_keys, push_n}, [&](const SparseTable::KeyGroups& groups, SparseTable::StripeRange r) {
          return t->Push(groups, push_grads, push_counts, step, lr_scale, fraction, r);
        }));
  }
  if (tagged && step_sync_->mode() == TrainConfig::BOUNDED) {
    RETURN_IF_ERROR(
        step_sync_->Push(header, {push_keys, push_n}, push_grads, push_counts, nullptr, release)
            .status());
  }
  return absl::OkStatus();
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
  // The arena is the client's: watch the client, so that one which exits
  // without detaching does not keep the memory mapped here. An arena whose
  // owner cannot be watched is refused: nothing would ever unmap it.
  auto client = std::make_unique<ClientWatch>(header.shm_path());
  if (!client->watching()) {
    return absl::InvalidArgumentError(
        absl::StrCat("attach: \"", header.shm_path(),
                     "\" is not /proc/<pid>/fd/<n> of a live process on this host"));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<SharedMapping> mapping,
                   SharedMapping::Open(header.shm_path(), header.shm_token(), header.shm_bytes()));
  absl::MutexLock lock(&arenas_mu_);
  uint64_t id = 0;
  while (id == 0 || arenas_.contains(id)) {
    if (getrandom(&id, sizeof(id), 0) != sizeof(id)) {
      return ErrnoError("getrandom", "cannot draw an arena id");
    }
  }
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
  if (now - last < options_.ttl_sweep_interval_ns) return;
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

absl::Status PsServer::Authorize(const RequestHeader& header, bool* chief) const {
  *chief = options_.chief_token.empty() || SecretsEqual(header.auth(), options_.chief_token);
  if (!options_.member_token.empty() && !*chief &&
      !SecretsEqual(header.auth(), options_.member_token)) {
    return absl::PermissionDeniedError("request without this job's secret");
  }
  switch (header.op()) {
    case OP_SHUTDOWN:
    case OP_SAVE:
    case OP_LOAD:
      if (!*chief) {
        return absl::PermissionDeniedError(
            absl::StrCat(Op_Name(header.op()), ": only the job's chief may ask for this"));
      }
      break;
    default:
      break;
  }
  return absl::OkStatus();
}

absl::Status PsServer::CheckCheckpointPath(const std::string& dir) const {
  if (options_.checkpoint_roots.empty() || dir.empty()) return absl::OkStatus();
  namespace fs = std::filesystem;
  std::error_code ec;
  // Resolves "..", and symbolic links as far as the path exists.
  const fs::path path = fs::weakly_canonical(fs::absolute(dir, ec), ec);
  if (!ec) {
    for (const std::string& root_dir : options_.checkpoint_roots) {
      std::error_code rec;
      const fs::path root = fs::weakly_canonical(fs::absolute(root_dir, rec), rec);
      if (rec || root.empty()) continue;
      auto [r, p] = std::mismatch(root.begin(), root.end(), path.begin(), path.end());
      // Strictly below the root (an empty last component is a trailing "/").
      if (r == root.end() || (std::next(r) == root.end() && r->empty())) {
        if (p != path.end() && !p->empty()) return absl::OkStatus();
      }
    }
  }
  return absl::PermissionDeniedError(absl::StrCat(
      "checkpoint path \"", dir, "\" is not inside this job's run or storage directory"));
}

uint64_t PsServer::RequestStep(const RequestHeader& header, bool chief) {
  const uint64_t step = header.global_step();
  if (chief) {
    uint64_t prev = max_global_step_.load(std::memory_order_relaxed);
    while (step > prev && !max_global_step_.compare_exchange_weak(prev, step)) {
    }
    return step;
  }
  const uint64_t job = max_global_step_.load(std::memory_order_relaxed);
  return std::min(step, job + kMaxStepLead);
}

void PsServer::AnswerZap() {
  // RFC 27: version, request id, domain, address, identity, mechanism,
  // credentials...; the reply: version, request id, status code and text,
  // user id, metadata.
  std::vector<zmq::message_t> req;
  if (!zmq::recv_multipart(*zap_, std::back_inserter(req), zmq::recv_flags::dontwait)) return;
  bool ok = false;
  if (req.size() >= 7 && req[5].to_string() == "CURVE" && req[6].size() == 32) {
    char z85[41];
    if (zmq_z85_encode(z85, static_cast<const uint8_t*>(req[6].data()), 32) != nullptr) {
      ok = SecretsEqual(absl::string_view(z85, 40), options_.curve_client_public_key);
    }
  }
  if (!ok) {
    zap_refused_.fetch_add(1, std::memory_order_relaxed);
    const std::string address = req.size() > 3 ? req[3].to_string() : "unknown";
    LogBadRequest(address, absl::UnauthenticatedError("CURVE handshake without the job's key"));
  }
  const std::string request_id = req.size() > 1 ? req[1].to_string() : "";
  std::vector<zmq::message_t> reply;
  reply.emplace_back(std::string_view("1.0"));
  reply.emplace_back(request_id.data(), request_id.size());
  reply.emplace_back(std::string_view(ok ? "200" : "400"));
  reply.emplace_back(std::string_view(ok ? "OK" : "unknown client key"));
  reply.emplace_back(std::string_view(ok ? "job" : ""));
  reply.emplace_back();
  (void)zmq::send_multipart(*zap_, reply, zmq::send_flags::dontwait);
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
  zap_.reset();
  context_.close();  // waits for queued replies within each socket's linger
}

}  // namespace ctrps
