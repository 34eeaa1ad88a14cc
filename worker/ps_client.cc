#include "worker/ps_client.h"

#include <cstring>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/hash.h"
#include "common/sync_point.h"
#include "glog/logging.h"
#include "zmq_addon.hpp"

namespace ctrps {

struct PsFuture::State {
  absl::Mutex mu;
  bool done ABSL_GUARDED_BY(mu) = false;  // replied and no caller buffer held
  bool replied ABSL_GUARDED_BY(mu) = false;
  int holds ABSL_GUARDED_BY(mu) = 0;  // frames still pointing at caller memory
  absl::Status status ABSL_GUARDED_BY(mu);

  void Complete(const absl::Status& s) {
    absl::MutexLock lock(&mu);
    if (replied) return;
    status = s;
    replied = true;
    done = holds == 0;
  }
  void Hold() {
    absl::MutexLock lock(&mu);
    ++holds;
  }
  void Release() {
    absl::MutexLock lock(&mu);
    --holds;
    done = replied && holds == 0;
  }
};

// A PsBuffer's range of the arena; returned to the arena when neither the
// buffer nor any request still using it holds it.
struct PsBuffer::Region {
  std::shared_ptr<SharedArena> arena;
  uint64_t offset = 0;
  std::atomic<int> late{0};  // timed-out requests the server may still serve from it
  ~Region() { arena->Free(offset); }
};

PsBuffer& PsBuffer::operator=(PsBuffer&& other) noexcept {
  if (this != &other) {
    region_ = std::move(other.region_);
    heap_ = std::move(other.heap_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

bool PsBuffer::busy() const { return region_ != nullptr && region_->late.load() > 0; }

namespace {

// A frame that sends caller memory without copying it; the future is not
// done until ZeroMQ has let go of the memory.
zmq::message_t BorrowedFrame(const void* data, size_t size,
                             const std::shared_ptr<PsFuture::State>& state) {
  state->Hold();
  auto* hint = new std::shared_ptr<PsFuture::State>(state);
  return zmq::message_t(
      const_cast<void*>(data), size,
      [](void*, void* h) {
        auto* held = static_cast<std::shared_ptr<PsFuture::State>*>(h);
        (*held)->Release();
        delete held;
      },
      hint);
}

}  // namespace

absl::Status PsFuture::Wait() {
  if (state_ == nullptr) return absl::FailedPreconditionError("waiting on an empty PsFuture");
  absl::MutexLock lock(&state_->mu);
  // The client's IO thread enforces the request deadline, so this returns.
  state_->mu.Await(absl::Condition(&state_->done));
  return state_->status;
}

bool PsFuture::done() const {
  absl::MutexLock lock(&state_->mu);
  return state_->done;
}

struct PsClient::Request {
  uint64_t id = 0;
  Op op = OP_UNKNOWN;
  absl::Time deadline;
  std::shared_ptr<PsFuture::State> state;
  struct Part {
    std::vector<zmq::message_t> frames;  // to send; empty: nothing for this shard
    std::vector<uint32_t> positions;     // caller positions of the part's keys; empty: identity
    uint64_t num_keys = 0;
    bool waiting = false;
    // Bulk data in the shard's shared arena: the region allocated (freed
    // when the server has replied) and where the values are in it.
    bool shm = false;
    uint64_t shm_region = 0;  // = the keys' offset
    uint64_t shm_values = 0;
    uint64_t shm_counts = 0;
    // The caller's PsBuffer when the values are in it (shm_values is its
    // offset): kept reserved while the server may use it.
    std::shared_ptr<PsBuffer::Region> pinned;
  };
  std::vector<Part> parts;
  int pending = 0;
  float* out = nullptr;
  int dim = 0;
  std::vector<ReplyHeader>* replies = nullptr;  // control ops
  absl::Status status;
};

namespace {
constexpr char kWakeEndpointPrefix[] = "inproc://ps-client-wake-";
std::atomic<uint64_t> client_counter{0};
}  // namespace

PsClient::PsClient(const PsClientOptions& options)
    : endpoints_(options.endpoints),
      auth_token_(options.auth_token),
      curve_server_public_key_(options.curve_server_public_key),
      curve_public_key_(options.curve_public_key),
      curve_secret_key_(options.curve_secret_key),
      timeout_(options.timeout),
      connect_timeout_(options.connect_timeout),
      context_(1),
      shared_memory_bytes_(options.shared_memory_bytes) {}

PsClient::~PsClient() {
  if (io_thread_.joinable()) DetachArenas();
  stopping_.store(true);
  {
    absl::MutexLock lock(&mu_);
    if (wake_send_) wake_send_->send(zmq::str_buffer("x"), zmq::send_flags::dontwait);
  }
  if (io_thread_.joinable()) io_thread_.join();
}

absl::StatusOr<std::unique_ptr<PsClient>> PsClient::Connect(const PsClientOptions& options) {
  if (options.endpoints.empty()) return absl::InvalidArgumentError("no server endpoints given");
  std::unique_ptr<PsClient> client(new PsClient(options));
  absl::Status s = client->Start();
  if (!s.ok()) return s;
  return client;
}

absl::Status PsClient::Start() {
  std::string wake = absl::StrCat(kWakeEndpointPrefix, client_counter.fetch_add(1));
  try {
    wake_recv_ = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::pull);
    wake_recv_->bind(wake);
    {
      absl::MutexLock lock(&mu_);
      wake_send_ = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::push);
      wake_send_->set(zmq::sockopt::linger, 0);
      wake_send_->connect(wake);
    }
    for (const std::string& ep : endpoints_) {
      dealers_.emplace_back(context_, zmq::socket_type::dealer);
      zmq::socket_t& d = dealers_.back();
      d.set(zmq::sockopt::linger, 0);
      d.set(zmq::sockopt::sndhwm, 0);
      d.set(zmq::sockopt::rcvhwm, 0);
      d.set(zmq::sockopt::reconnect_ivl, 100);
      if (!curve_server_public_key_.empty()) {
        d.set(zmq::sockopt::curve_serverkey, curve_server_public_key_);
        d.set(zmq::sockopt::curve_publickey, curve_public_key_);
        d.set(zmq::sockopt::curve_secretkey, curve_secret_key_);
      }
      d.connect(ep);
    }
  } catch (const zmq::error_t& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot connect to ", absl::StrJoin(endpoints_, ", "), ": ", e.what()));
  }
  io_thread_ = std::thread([this] { IoLoop(); });
  absl::Duration saved = timeout_;
  timeout_ = connect_timeout_;
  absl::Status s = SubmitControl(OP_PING, nullptr).Wait();
  if (s.ok() && shared_memory_bytes_ > 0) AttachArenas();
  timeout_ = saved;
  return s;
}

void PsClient::AttachArenas() {
  const size_t S = endpoints_.size();
  std::vector<std::shared_ptr<SharedArena>> arenas(S);
  for (size_t s = 0; s < S; ++s) {
    auto arena = SharedArena::Create(shared_memory_bytes_);
    if (!arena.ok()) {
      LOG(WARNING) << "requests use the socket, not shared memory: " << arena.status();
      return;
    }
    arenas[s] = std::move(*arena);
  }
  std::vector<ReplyHeader> replies;
  (void)SubmitControl(OP_ATTACH, &replies, [&](int s, RequestHeader* h) {
    h->set_shm_path(arenas[s]->path());
    h->set_shm_token(arenas[s]->token());
    h->set_shm_bytes(arenas[s]->size());
    return true;
  }).Wait();  // each shard's outcome is in its reply
  arena_ids_.assign(S, 0);
  arenas_.resize(S);
  for (size_t s = 0; s < S; ++s) {
    if (replies[s].code() == 0 && replies[s].has_shm_id()) {
      arena_ids_[s] = replies[s].shm_id();
      arenas_[s] = std::move(arenas[s]);
    } else {
      // Expected for a server on another host.
      VLOG(1) << "server " << s << " (" << endpoints_[s]
              << "): requests use the socket: " << replies[s].message();
    }
  }
}

void PsClient::DetachArenas() {
  if (num_shared_memory_shards() == 0 || arenas_detached_.exchange(true)) return;
  // Best effort, briefly: a server also unmaps the arenas of clients that exit.
  (void)SubmitControl(
      OP_DETACH, nullptr,
      [this](int s, RequestHeader* h) {
        if (arenas_[s] == nullptr) return false;
        h->set_shm_id(arena_ids_[s]);
        return true;
      },
      absl::Milliseconds(500))
      .Wait();
}

int PsClient::num_shared_memory_shards() const {
  int n = 0;
  for (const auto& a : arenas_) n += a != nullptr;
  return n;
}

PsFuture PsClient::Pull(const std::string& table, std::span<const uint64_t> keys, int dim,
                        float* out, uint64_t global_step, const StepTag& tag,
                        uint64_t catch_up_to, float learning_rate_scale) {
  return Submit(OP_PULL, table, keys, dim, out, nullptr, nullptr, global_step, learning_rate_scale,
                1.0f, nullptr, tag, catch_up_to);
}

PsFuture PsClient::Push(const std::string& table, std::span<const uint64_t> keys, int dim,
                        const float* grads, const uint32_t* counts, uint64_t global_step,
                        float learning_rate_scale, float batch_fraction, const StepTag& tag) {
  return Submit(OP_PUSH, table, keys, dim, nullptr, grads, counts, global_step, learning_rate_scale,
                batch_fraction, nullptr, tag);
}

PsBuffer PsClient::NewBuffer(size_t floats) {
  PsBuffer b;
  b.size_ = floats;
  if (floats > 0 && arenas_.size() == 1 && arenas_[0] != nullptr && !arenas_detached_.load() &&
      floats <= arenas_[0]->size() / sizeof(float)) {
    if (auto offset = arenas_[0]->Allocate(floats * sizeof(float))) {
      auto region = std::make_shared<PsBuffer::Region>();
      region->arena = arenas_[0];
      region->offset = *offset;
      b.data_ = reinterpret_cast<float*>(arenas_[0]->data() + *offset);
      std::memset(b.data_, 0, floats * sizeof(float));
      b.region_ = std::move(region);
      return b;
    }
  }
  b.heap_ = std::make_unique<float[]>(floats);  // zeroed
  b.data_ = b.heap_.get();
  return b;
}

namespace {
absl::Status CheckBuffer(const char* op, const PsBuffer& b, size_t keys, int dim) {
  if (dim < 0 || b.size() < keys * static_cast<size_t>(dim)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: %d keys of dim %d need %d floats, the buffer has %d", op, keys, dim,
                        keys * dim, b.size()));
  }
  if (b.busy()) {
    return absl::FailedPreconditionError(
        absl::StrCat(op,
                     ": the buffer is still in use by a request that timed out (the server may yet "
                     "read or write it); "
                     "take a new buffer"));
  }
  return absl::OkStatus();
}
}  // namespace

PsFuture PsClient::Completed(const absl::Status& status) {
  auto state = std::make_shared<PsFuture::State>();
  state->Complete(status);
  return PsFuture(std::move(state));
}

PsFuture PsClient::Pull(const std::string& table, std::span<const uint64_t> keys, int dim,
                        PsBuffer& out, uint64_t global_step, uint64_t catch_up_to,
                        float learning_rate_scale) {
  if (absl::Status s = CheckBuffer("pull", out, keys.size(), dim); !s.ok()) return Completed(s);
  return Submit(OP_PULL, table, keys, dim, out.data(), nullptr, nullptr, global_step,
                learning_rate_scale, 1.0f, out.region_, {}, catch_up_to);
}

PsFuture PsClient::Push(const std::string& table, std::span<const uint64_t> keys, int dim,
                        const PsBuffer& grads, const uint32_t* counts, uint64_t global_step,
                        float learning_rate_scale, float batch_fraction) {
  if (absl::Status s = CheckBuffer("push", grads, keys.size(), dim); !s.ok()) return Completed(s);
  return Submit(OP_PUSH, table, keys, dim, nullptr, grads.data(), counts, global_step,
                learning_rate_scale, batch_fraction, grads.region_);
}

PsFuture PsClient::Submit(Op op, const std::string& table, std::span<const uint64_t> keys, int dim,
                          float* out, const float* grads, const uint32_t* counts,
                          uint64_t global_step, float learning_rate_scale, float batch_fraction,
                          const std::shared_ptr<PsBuffer::Region>& values, const StepTag& tag,
                          uint64_t catch_up_to) {
  // A tagged push counts on every server even without keys.
  const bool every_shard = op == OP_PUSH && tag.worker >= 0;
  if (keys.empty() && !every_shard) return Completed(absl::OkStatus());
  auto req = std::make_shared<Request>();
  req->id = next_id_.fetch_add(1);
  req->op = op;
  req->state = std::make_shared<PsFuture::State>();
  req->out = out;
  req->dim = dim;
  PsFuture future(req->state);
  const uint32_t S = static_cast<uint32_t>(endpoints_.size());
  const size_t row_bytes = sizeof(float) * dim;
  req->parts.resize(S);
  // Places part p's bulk data in its shard's arena when there is room:
  // keys, then values, then counts, each 64-byte aligned. With
  // values_in_place the values stay where they are, in the caller's
  // PsBuffer (in the same arena).
  const bool with_counts = op == OP_PUSH && counts != nullptr;
  auto align = [](uint64_t b) { return (b + 63) & ~uint64_t{63}; };
  auto place = [&](uint32_t s, uint64_t n, bool values_in_place) {
    if (s >= arenas_.size() || arenas_[s] == nullptr) return false;
    const uint64_t keys_bytes = align(n * sizeof(uint64_t)),
                   values_bytes = values_in_place ? 0 : align(n * row_bytes);
    auto region =
        arenas_[s]->Allocate(keys_bytes + values_bytes + (with_counts ? n * sizeof(uint32_t) : 0));
    if (!region) return false;
    shared_memory_parts_.fetch_add(1, std::memory_order_relaxed);
    auto& p = req->parts[s];
    p.shm = true;
    p.shm_region = *region;
    p.shm_values = values_in_place ? values->offset : *region + keys_bytes;
    p.shm_counts = *region + keys_bytes + values_bytes;
    if (values_in_place) {
      p.pinned = values;
      zero_copy_parts_.fetch_add(1, std::memory_order_relaxed);
    }
    return true;
  };
  auto at = [&](uint32_t s, uint64_t offset) { return arenas_[s]->data() + offset; };
  auto header_frame = [&](uint32_t s, uint64_t n) {
    const auto& p = req->parts[s];
    RequestHeader h;
    h.set_op(op);
    h.set_request_id(req->id);
    if (!auth_token_.empty()) h.set_auth(auth_token_);
    h.set_table(table);
    h.set_num_keys(n);
    h.set_dim(dim);
    h.set_global_step(global_step);
    if (counts != nullptr) h.set_has_counts(true);
    if (learning_rate_scale != 1.0f) h.set_learning_rate_scale(learning_rate_scale);
    if (batch_fraction != 1.0f) h.set_batch_fraction(batch_fraction);
    if (tag.worker >= 0) {
      h.set_sync_worker(tag.worker);
      h.set_sync_first_step(tag.first_step);
      if (tag.wait_step.has_value()) h.set_sync_wait_step(*tag.wait_step);
    }
    if (catch_up_to > 0) h.set_l2_catch_up_to(catch_up_to);
    if (p.shm) {
      h.set_shm_id(arena_ids_[s]);
      h.set_shm_keys_offset(p.shm_region);
      h.set_shm_values_offset(p.shm_values);
      if (with_counts) h.set_shm_counts_offset(p.shm_counts);
    }
    return zmq::message_t(h.SerializeAsString());
  };
  // A part without keys (a tagged push): the header and empty frames.
  auto empty_part = [&](uint32_t s) {
    auto& p = req->parts[s];
    p.frames.push_back(header_frame(s, 0));
    p.frames.emplace_back();
    p.frames.emplace_back();
    if (counts != nullptr) p.frames.emplace_back();
  };
  if (keys.empty()) {
    for (uint32_t s = 0; s < S; ++s) empty_part(s);
  } else if (S == 1) {
    auto& p = req->parts[0];
    p.num_keys = keys.size();
    const bool in_place = values != nullptr && !arenas_.empty() && values->arena == arenas_[0];
    if (place(0, keys.size(), in_place)) {
      std::memcpy(at(0, p.shm_region), keys.data(), keys.size_bytes());
      if (op == OP_PUSH && !in_place)
        std::memcpy(at(0, p.shm_values), grads, keys.size() * row_bytes);
      if (with_counts) std::memcpy(at(0, p.shm_counts), counts, keys.size() * sizeof(uint32_t));
      p.frames.push_back(header_frame(0, keys.size()));
      Enqueue(std::move(req), absl::ZeroDuration());
      return future;
    }
    p.frames.push_back(header_frame(0, keys.size()));
    p.frames.push_back(BorrowedFrame(keys.data(), keys.size_bytes(), req->state));
    if (op == OP_PUSH) {
      p.frames.push_back(BorrowedFrame(grads, keys.size() * row_bytes, req->state));
      if (counts != nullptr) {
        p.frames.push_back(BorrowedFrame(counts, keys.size() * sizeof(uint32_t), req->state));
      }
    }
  } else {
    // Split by shard: count, then fill each shard's frames in place.
    thread_local std::vector<uint32_t> shard_of;
    shard_of.resize(keys.size());
    std::vector<uint64_t> per_shard(S, 0);
    for (size_t i = 0; i < keys.size(); ++i) {
      shard_of[i] = ShardOf(keys[i], S);
      ++per_shard[shard_of[i]];
    }
    std::vector<uint64_t*> key_dst(S);
    std::vector<char*> grad_dst(S);
    std::vector<uint32_t*> count_dst(S);
    for (uint32_t s = 0; s < S; ++s) {
      auto& p = req->parts[s];
      p.num_keys = per_shard[s];
      if (p.num_keys == 0) {
        if (every_shard) empty_part(s);
        continue;
      }
      p.positions.reserve(p.num_keys);
      if (place(s, p.num_keys, /*values_in_place=*/false)) {
        p.frames.push_back(header_frame(s, p.num_keys));
        key_dst[s] = reinterpret_cast<uint64_t*>(at(s, p.shm_region));
        grad_dst[s] = reinterpret_cast<char*>(at(s, p.shm_values));
        count_dst[s] = reinterpret_cast<uint32_t*>(at(s, p.shm_counts));
        continue;
      }
      p.frames.push_back(header_frame(s, p.num_keys));
      p.frames.emplace_back(p.num_keys * sizeof(uint64_t));
      if (op == OP_PUSH) {
        p.frames.emplace_back(p.num_keys * row_bytes);
        if (counts != nullptr) p.frames.emplace_back(p.num_keys * sizeof(uint32_t));
      }
      // Pointers only once the vector is complete: ZeroMQ keeps messages of
      // up to 33 bytes inside the message object, so a frame's data moves
      // when the vector grows.
      key_dst[s] = static_cast<uint64_t*>(p.frames[1].data());
      if (op == OP_PUSH) {
        grad_dst[s] = static_cast<char*>(p.frames[2].data());
        if (counts != nullptr) count_dst[s] = static_cast<uint32_t*>(p.frames[3].data());
      }
    }
    for (size_t i = 0; i < keys.size(); ++i) {
      const uint32_t s = shard_of[i];
      auto& p = req->parts[s];
      *key_dst[s]++ = keys[i];
      p.positions.push_back(static_cast<uint32_t>(i));
      if (op == OP_PUSH) {
        std::memcpy(grad_dst[s], grads + i * dim, row_bytes);
        grad_dst[s] += row_bytes;
        if (counts != nullptr) *count_dst[s]++ = counts[i];
      }
    }
  }
  Enqueue(std::move(req), absl::ZeroDuration());
  return future;
}

PsFuture PsClient::SubmitControl(Op op, std::vector<ReplyHeader>* replies,
                                 const std::function<bool(int, RequestHeader*)>& fill,
                                 absl::Duration timeout) {
  auto req = std::make_shared<Request>();
  req->id = next_id_.fetch_add(1);
  req->op = op;
  req->state = std::make_shared<PsFuture::State>();
  req->replies = replies;
  if (replies != nullptr) {
    ReplyHeader none;
    none.set_code(static_cast<int>(absl::StatusCode::kUnavailable));
    none.set_message("no reply");
    replies->assign(endpoints_.size(), none);
  }
  PsFuture future(req->state);
  req->parts.resize(endpoints_.size());
  for (size_t s = 0; s < req->parts.size(); ++s) {
    RequestHeader h;
    h.set_op(op);
    h.set_request_id(req->id);
    if (!auth_token_.empty()) h.set_auth(auth_token_);
    if (fill && !fill(static_cast<int>(s), &h)) continue;
    req->parts[s].frames.emplace_back(h.SerializeAsString());
  }
  Enqueue(std::move(req), timeout);
  return future;
}

namespace {
std::vector<uint64_t> RowsOf(const std::vector<ReplyHeader>& replies) {
  std::vector<uint64_t> rows;
  for (const ReplyHeader& r : replies) rows.push_back(r.rows());
  return rows;
}
}  // namespace

absl::StatusOr<std::vector<uint64_t>> PsClient::Save(const std::string& dir,
                                                     absl::Duration timeout) {
  std::vector<ReplyHeader> replies;
  absl::Status s = SubmitControl(
                       OP_SAVE, &replies,
                       [&dir](int shard, RequestHeader* h) {
                         h->set_path(absl::StrCat(dir, "/server-", shard));
                         return true;
                       },
                       timeout)
                       .Wait();
  if (!s.ok()) return s;
  return RowsOf(replies);
}

absl::StatusOr<std::vector<uint64_t>> PsClient::Load(const std::string& dir,
                                                     absl::Duration timeout) {
  std::vector<ReplyHeader> replies;
  absl::Status s = SubmitControl(
                       OP_LOAD, &replies,
                       [&dir](int, RequestHeader* h) {
                         h->set_path(dir);
                         return true;
                       },
                       timeout)
                       .Wait();
  if (!s.ok()) return s;
  return RowsOf(replies);
}

void PsClient::Enqueue(std::shared_ptr<Request> request, absl::Duration timeout) {
  request->deadline = absl::Now() + (timeout > absl::ZeroDuration() ? timeout : timeout_);
  absl::MutexLock lock(&mu_);
  submitted_.push_back(std::move(request));
  wake_send_->send(zmq::str_buffer("w"), zmq::send_flags::dontwait);
}

absl::StatusOr<std::vector<ServerStats>> PsClient::Stats() {
  std::vector<ReplyHeader> replies;
  absl::Status s = SubmitControl(OP_STATS, &replies).Wait();
  if (!s.ok()) return s;
  std::vector<ServerStats> stats;
  for (const ReplyHeader& r : replies) stats.push_back(r.stats());
  return stats;
}

absl::Status PsClient::Shutdown() {
  absl::Status s = SubmitControl(OP_SHUTDOWN, nullptr).Wait();
  // The servers unmap on exit; nothing to detach from.
  if (s.ok()) arenas_detached_.store(true);
  return s;
}

void PsClient::IoLoop() {
  const size_t S = dealers_.size();
  std::vector<zmq::pollitem_t> items;
  items.push_back({wake_recv_->handle(), 0, ZMQ_POLLIN, 0});
  for (auto& d : dealers_) items.push_back({d.handle(), 0, ZMQ_POLLIN, 0});
  absl::flat_hash_map<uint64_t, std::shared_ptr<Request>> in_flight;
  // Arena regions of requests that timed out, by (request id, shard), and
  // the caller's PsBuffer they use: the server may still write into them, so
  // they are freed only by its late reply.
  struct Quarantined {
    uint64_t region;
    std::shared_ptr<PsBuffer::Region> pinned;
  };
  absl::flat_hash_map<std::pair<uint64_t, size_t>, Quarantined> quarantined;
  std::vector<std::shared_ptr<Request>> incoming;
  std::vector<zmq::message_t> frames;
  auto server_name = [this](size_t s) {
    return absl::StrCat("server ", s, " (", endpoints_[s], ")");
  };
  auto finish = [&](Request& r) {
    r.state->Complete(r.status);
    in_flight.erase(r.id);
  };

  while (!stopping_.load()) {
    zmq::poll(items, std::chrono::milliseconds(20));
    if (items[0].revents & ZMQ_POLLIN) {
      zmq::message_t m;
      while (wake_recv_->recv(m, zmq::recv_flags::dontwait)) {
      }
      {
        absl::MutexLock lock(&mu_);
        incoming.swap(submitted_);
      }
      for (auto& req : incoming) {
        for (size_t s = 0; s < S; ++s) {
          auto& p = req->parts[s];
          if (p.frames.empty()) continue;
          // A connection refused at its handshake (a CURVE key the server
          // does not accept) leaves no pipe to queue into: a blocking send
          // would wait for good, past every deadline.
          const auto more = p.frames.size() > 1 ? zmq::send_flags::sndmore : zmq::send_flags::none;
          if (!dealers_[s].send(p.frames[0], more | zmq::send_flags::dontwait)) {
            if (p.shm) arenas_[s]->Free(p.shm_region);
            p.frames.clear();
            if (req->status.ok()) {
              req->status = absl::UnavailableError(absl::StrCat(
                  server_name(s), ": no connection (refused at the handshake, or not up)"));
            }
            continue;
          }
          for (size_t i = 1; i < p.frames.size(); ++i) {
            dealers_[s].send(p.frames[i], i + 1 < p.frames.size() ? zmq::send_flags::sndmore
                                                                  : zmq::send_flags::none);
          }
          p.frames.clear();
          p.waiting = true;
          ++req->pending;
        }
        if (req->pending == 0) {
          req->state->Complete(req->status);
        } else {
          in_flight.emplace(req->id, req);
        }
      }
      incoming.clear();
    }
    for (size_t s = 0; s < S; ++s) {
      if (!(items[s + 1].revents & ZMQ_POLLIN)) continue;
      while (true) {
        frames.clear();
        if (!zmq::recv_multipart(dealers_[s], std::back_inserter(frames),
                                 zmq::recv_flags::dontwait))
          break;
        ReplyHeader h;
        if (frames.empty() ||
            !h.ParseFromArray(frames[0].data(), static_cast<int>(frames[0].size())))
          continue;
        auto it = in_flight.find(h.request_id());
        if (it == in_flight.end()) {  // late reply to a request that timed out
          if (auto q = quarantined.find({h.request_id(), s}); q != quarantined.end()) {
            arenas_[s]->Free(q->second.region);
            if (q->second.pinned != nullptr) q->second.pinned->late.fetch_sub(1);
            quarantined.erase(q);
          }
          TEST_SYNC_POINT("PsClient::LateReplyHandled");
          continue;
        }
        Request& r = *it->second;
        auto& p = r.parts[s];
        if (!p.waiting) continue;
        p.waiting = false;
        --r.pending;
        if (r.replies != nullptr) (*r.replies)[s] = h;
        if (h.code() != 0) {
          if (r.status.ok()) {
            r.status = absl::Status(static_cast<absl::StatusCode>(h.code()),
                                    absl::StrCat(server_name(s), ": ", h.message()));
          }
        } else if (r.op == OP_PULL) {
          const size_t row = sizeof(float) * r.dim;
          const char* src = nullptr;
          if (p.shm) {
            if (frames.size() == 1)
              src = reinterpret_cast<const char*>(arenas_[s]->data() + p.shm_values);
          } else if (frames.size() == 2 && frames[1].size() == p.num_keys * row) {
            src = static_cast<const char*>(frames[1].data());
          }
          if (src == nullptr) {
            if (r.status.ok()) {
              r.status = absl::InternalError(
                  absl::StrCat(server_name(s), ": pull reply has the wrong size"));
            }
          } else if (p.pinned != nullptr) {
            // The server wrote the rows into the caller's PsBuffer: nothing to copy.
          } else if (p.positions.empty()) {
            std::memcpy(r.out, src, p.num_keys * row);
          } else {
            char* out = reinterpret_cast<char*>(r.out);
            for (size_t i = 0; i < p.positions.size(); ++i) {
              std::memcpy(out + p.positions[i] * row, src + i * row, row);
            }
          }
        }
        if (p.shm) arenas_[s]->Free(p.shm_region);
        if (r.pending == 0) finish(r);
      }
    }
    // Deadlines.
    if (!in_flight.empty()) {
      absl::Time now = absl::Now();
      std::vector<uint64_t> expired;
      for (auto& [id, req] : in_flight) {
        if (now >= req->deadline) expired.push_back(id);
      }
      for (uint64_t id : expired) {
        Request& r = *in_flight[id];
        std::vector<std::string> silent;
        for (size_t s = 0; s < S; ++s) {
          if (!r.parts[s].waiting) continue;
          silent.push_back(server_name(s));
          if (r.parts[s].shm) {
            quarantined[{id, s}] = {r.parts[s].shm_region, r.parts[s].pinned};
            if (r.parts[s].pinned != nullptr) r.parts[s].pinned->late.fetch_add(1);
          }
        }
        r.status = absl::UnavailableError(
            absl::StrFormat("%s did not answer %s within %s", absl::StrJoin(silent, ", "),
                            Op_Name(r.op), absl::FormatDuration(timeout_)));
        finish(r);
      }
    }
  }
  for (auto& [id, req] : in_flight) {
    req->state->Complete(absl::CancelledError("client closed"));
  }
  absl::MutexLock lock(&mu_);
  for (auto& req : submitted_) req->state->Complete(absl::CancelledError("client closed"));
}

}  // namespace ctrps
