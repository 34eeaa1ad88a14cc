#include "worker/ps_client.h"

#include <random>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "common/shared_memory.h"
#include "common/sync_point.h"
#include "gtest/gtest.h"
#include "ps/ps_server.h"
#include "zmq_addon.hpp"

namespace ctrps {
namespace {

TableConfig Table(int dim) {
  TableConfig t;
  t.set_name("emb");
  t.set_dim(dim);
  t.set_seed(99);
  t.mutable_init()->set_kind(InitializerConfig::NORMAL);
  t.mutable_init()->set_scale(0.1f);
  t.mutable_optimizer()->set_kind(SparseOptimizerConfig::ADAGRAD);
  t.mutable_optimizer()->set_learning_rate(0.05f);
  return t;
}

struct Cluster {
  std::vector<std::unique_ptr<PsServer>> servers;
  std::unique_ptr<PsClient> client;
  std::vector<std::string> endpoints;

  explicit Cluster(int n, int dim = 8, absl::Duration timeout = absl::Seconds(10),
                   size_t shared_memory_bytes = PsClientOptions().shared_memory_bytes) {
    for (int i = 0; i < n; ++i) {
      PsServerOptions o;
      o.shard = i;
      o.num_shards = n;
      o.tables.push_back(Table(dim));
      servers.push_back(std::make_unique<PsServer>(o));
      EXPECT_TRUE(servers.back()->Start().ok());
      endpoints.push_back(servers.back()->endpoint());
    }
    PsClientOptions co;
    co.endpoints = endpoints;
    co.timeout = timeout;
    co.shared_memory_bytes = shared_memory_bytes;
    auto c = PsClient::Connect(co);
    EXPECT_TRUE(c.ok()) << c.status();
    client = std::move(*c);
  }
};

std::vector<uint64_t> Keys(int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<uint64_t> keys(n);
  for (auto& k : keys) k = rng();
  return keys;
}

// n standard normal gradients, then n counts in [1, 3], drawn from rng.
std::vector<float> Gradients(size_t n, std::mt19937& rng) {
  std::vector<float> grads(n);
  for (auto& g : grads) g = std::normal_distribution<float>()(rng);
  return grads;
}
std::vector<uint32_t> Counts(size_t n, std::mt19937& rng) {
  std::vector<uint32_t> counts(n);
  for (auto& c : counts) c = 1 + rng() % 3;
  return counts;
}

TEST(PsClientTest, NewKeyRowsAreIdenticalWithOneTwoThreeServers) {
  const int kDim = 8;
  std::vector<uint64_t> keys = Keys(3000, 1);
  std::mt19937 rng(2);
  std::vector<float> grads = Gradients(keys.size() * kDim, rng);
  std::vector<std::vector<float>> fresh, trained;
  for (int servers = 1; servers <= 3; ++servers) {
    Cluster c(servers, kDim);
    std::vector<float> out(keys.size() * kDim);
    ASSERT_TRUE(c.client->Pull("emb", keys, kDim, out.data()).Wait().ok());
    fresh.push_back(out);
    ASSERT_TRUE(c.client->Push("emb", keys, kDim, grads.data()).Wait().ok());
    ASSERT_TRUE(c.client->Pull("emb", keys, kDim, out.data()).Wait().ok());
    trained.push_back(out);
  }
  std::vector<float> expect(kDim);
  InitializeRow(Table(kDim), keys[17], expect.data(), kDim);
  EXPECT_EQ(std::vector<float>(fresh[0].begin() + 17 * kDim, fresh[0].begin() + 18 * kDim), expect);
  EXPECT_EQ(fresh[0], fresh[1]);
  EXPECT_EQ(fresh[0], fresh[2]);
  EXPECT_EQ(trained[0], trained[1]);
  EXPECT_EQ(trained[0], trained[2]);
  EXPECT_NE(trained[0], fresh[0]);
}

TEST(PsClientTest, TinyRequestsSplitOverShardsAreExact) {
  // One to four keys per shard: ZeroMQ stores frames this small inside the
  // message object, where a pointer taken too early goes stale.
  for (int n : {1, 2, 3, 5, 8}) {
    std::vector<uint64_t> keys = Keys(n, 40 + n);
    std::vector<float> grads(n * 8);
    for (int i = 0; i < n * 8; ++i) grads[i] = 0.25f * (i + 1);
    std::vector<uint32_t> counts(n, 2);
    std::vector<std::vector<float>> rows;
    for (int servers : {1, 3}) {
      Cluster c(servers, 8);
      ASSERT_TRUE(c.client->Push("emb", keys, 8, grads.data(), counts.data(), 1).Wait().ok());
      std::vector<float> out(n * 8);
      ASSERT_TRUE(c.client->Pull("emb", keys, 8, out.data()).Wait().ok());
      rows.push_back(out);
      auto stats = c.client->Stats();
      uint64_t rows_in_memory = 0;
      for (const auto& s : *stats) rows_in_memory += s.table(0).rows_in_memory();
      EXPECT_EQ(rows_in_memory, static_cast<uint64_t>(n));
    }
    EXPECT_EQ(rows[0], rows[1]) << n << " keys";
  }
}

TEST(PsClientTest, SharedMemoryAndSocketGiveTheSameRows) {
  // Five requests: two of 3000 keys, three of 100. With one server and a
  // 64 KB arena the 3000-key ones (132 KB) go through the socket and the
  // rest through the arena; a 16 MB arena takes all five, and with three
  // servers each part (about 1000 keys, 44 KB) fits either arena.
  const int kDim = 8;
  std::vector<uint64_t> big = Keys(3000, 7), small(big.begin(), big.begin() + 100);
  std::mt19937 rng(8);
  std::vector<float> grads = Gradients(big.size() * kDim, rng);
  std::vector<uint32_t> counts = Counts(big.size(), rng);
  for (int servers : {1, 3}) {
    std::vector<std::vector<float>> results;
    for (size_t arena : {size_t{0}, size_t{64} << 10, size_t{16} << 20}) {
      Cluster c(servers, kDim, absl::Seconds(10), arena);
      EXPECT_EQ(c.client->num_shared_memory_shards(), arena > 0 ? servers : 0);
      std::vector<float> out(big.size() * kDim), out_small(small.size() * kDim);
      ASSERT_TRUE(c.client->Push("emb", big, kDim, grads.data(), counts.data(), 1).Wait().ok());
      ASSERT_TRUE(c.client->Push("emb", small, kDim, grads.data(), counts.data(), 2).Wait().ok());
      ASSERT_TRUE(c.client->Push("emb", small, kDim, grads.data(), nullptr, 3).Wait().ok());
      ASSERT_TRUE(c.client->Pull("emb", big, kDim, out.data()).Wait().ok());
      ASSERT_TRUE(c.client->Pull("emb", small, kDim, out_small.data()).Wait().ok());
      const uint64_t through_arena = arena == 0                  ? 0
                                     : servers == 3              ? 15
                                     : arena < (size_t{1} << 20) ? 3
                                                                 : 5;
      EXPECT_EQ(c.client->shared_memory_parts(), through_arena)
          << servers << " servers, arena " << arena;
      out.insert(out.end(), out_small.begin(), out_small.end());
      results.push_back(out);
      auto stats = c.client->Stats();
      ASSERT_TRUE(stats.ok());
      uint64_t pushed = 0;
      for (const auto& st : *stats) pushed += st.table(0).pushed_keys();
      EXPECT_EQ(pushed, 3200u);
    }
    EXPECT_EQ(results[0], results[1]) << servers << " servers";
    EXPECT_EQ(results[0], results[2]) << servers << " servers";
  }
}

TEST(PsClientTest, ServerErrorNamesTheServer) {
  Cluster c(2);
  std::vector<uint64_t> keys = Keys(10, 3);
  std::vector<float> out(10 * 8);
  absl::Status s = c.client->Pull("nope", keys, 8, out.data()).Wait();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_NE(std::string(s.message()).find("server "), std::string::npos) << s;
  EXPECT_NE(std::string(s.message()).find("unknown table \"nope\""), std::string::npos) << s;
}

TEST(PsClientTest, UnreachableServerIsUnavailable) {
  PsClientOptions co;
  co.endpoints = {"tcp://127.0.0.1:9"};
  co.connect_timeout = absl::Milliseconds(300);
  auto c = PsClient::Connect(co);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(std::string(c.status().message()).find("server 0 (tcp://127.0.0.1:9)"),
            std::string::npos)
      << c.status();
}

TEST(PsClientTest, CrashedServerIsUnavailableNotAHang) {
  Cluster c(2, 8, absl::Milliseconds(500));
  c.servers[1]->Stop();
  std::vector<uint64_t> keys = Keys(100, 4);
  std::vector<float> out(100 * 8);
  absl::Time start = absl::Now();
  absl::Status s = c.client->Pull("emb", keys, 8, out.data()).Wait();
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_NE(std::string(s.message()).find("server 1"), std::string::npos) << s;
  EXPECT_EQ(std::string(s.message()).find("server 0"), std::string::npos) << s;
}

// A stand-in server that maps the client's arena holds the first pull past
// the client's deadline, answers the second, then writes into the first
// pull's range and answers it late; a third pull gets the range back. With
// first_into_buffer the first pull goes into a PsBuffer that the caller
// drops as soon as the pull has timed out.
void CheckTimedOutPullKeepsItsRangeUntilTheLateReply(bool first_into_buffer) {
  SyncPoint* sp = SyncPoint::Get();
  sp->ClearAll();
  sp->EnableProcessing();
  zmq::context_t ctx(1);
  zmq::socket_t router(ctx, zmq::socket_type::router);
  router.set(zmq::sockopt::linger, 0);
  router.set(zmq::sockopt::rcvtimeo, 5000);  // a stand-in that hears nothing gives up
  router.bind("tcp://127.0.0.1:0");
  const std::string endpoint = router.get(zmq::sockopt::last_endpoint);
  absl::Notification second_answered;
  std::vector<std::pair<uint64_t, uint64_t>> pull_ranges;  // values offset, bytes
  std::thread server([&] {
    std::unique_ptr<SharedMapping> arena;
    std::vector<zmq::message_t> held;
    RequestHeader held_header;
    int pulls = 0;
    auto reply = [&](zmq::message_t& identity, const RequestHeader& h, uint64_t shm_id = 0) {
      ReplyHeader r;
      r.set_request_id(h.request_id());
      if (shm_id != 0) r.set_shm_id(shm_id);
      router.send(identity, zmq::send_flags::sndmore);
      router.send(zmq::buffer(r.SerializeAsString()), zmq::send_flags::none);
    };
    while (true) {
      std::vector<zmq::message_t> f;
      if (!zmq::recv_multipart(router, std::back_inserter(f))) return;
      RequestHeader h;
      ASSERT_TRUE(h.ParseFromArray(f[1].data(), f[1].size()));
      if (h.op() == OP_ATTACH) {
        auto m = SharedMapping::Open(h.shm_path(), h.shm_token(), h.shm_bytes());
        ASSERT_TRUE(m.ok()) << m.status();
        arena = std::move(*m);
        reply(f[0], h, /*shm_id=*/1);
      } else if (h.op() == OP_PULL) {
        ASSERT_TRUE(h.has_shm_id());
        const uint64_t bytes = h.num_keys() * h.dim() * sizeof(float);
        pull_ranges.emplace_back(h.shm_values_offset(), bytes);
        float* rows = reinterpret_cast<float*>(arena->Range(h.shm_values_offset(), bytes, 4));
        ASSERT_NE(rows, nullptr);
        if (++pulls == 1) {
          held = std::move(f);
          held_header = h;
          continue;
        }
        std::fill(rows, rows + h.num_keys() * h.dim(), 2.0f);
        reply(f[0], h);
        if (pulls == 3) continue;
        ASSERT_TRUE(second_answered.WaitForNotificationWithTimeout(absl::Seconds(10)));
        // The late write into the first pull's range, then its reply.
        float* late = reinterpret_cast<float*>(arena->Range(
            held_header.shm_values_offset(), held_header.num_keys() * held_header.dim() * 4, 4));
        std::fill(late, late + held_header.num_keys() * held_header.dim(), 9.0f);
        reply(held[0], held_header);
      } else {
        reply(f[0], h);  // PING, DETACH
        if (h.op() == OP_DETACH) return;
      }
    }
  });
  {
    PsClientOptions co;
    co.endpoints = {endpoint};
    co.timeout = absl::Milliseconds(300);
    co.shared_memory_bytes = 1 << 20;
    auto c = PsClient::Connect(co);
    ASSERT_TRUE(c.ok()) << c.status();
    ASSERT_EQ((*c)->num_shared_memory_shards(), 1);
    std::vector<uint64_t> keys = Keys(1000, 9);
    std::vector<float> first(1000 * 4), second(1000 * 4);
    if (first_into_buffer) {
      // Room for the second pull's keys and rows, were its range free.
      PsBuffer buffer = (*c)->NewBuffer(2 * 1000 * 4);
      ASSERT_TRUE(buffer.shared());
      EXPECT_EQ((*c)->Pull("emb", keys, 4, buffer).Wait().code(), absl::StatusCode::kUnavailable);
      EXPECT_EQ((*c)->zero_copy_parts(), 1u);
      // The server may still write into it: refused, not sent.
      EXPECT_TRUE(buffer.busy());
      absl::Status again = (*c)->Pull("emb", keys, 4, buffer).Wait();
      EXPECT_EQ(again.code(), absl::StatusCode::kFailedPrecondition) << again;
      EXPECT_NE(again.message().find("new buffer"), std::string::npos) << again;
      EXPECT_EQ((*c)->Push("emb", keys, 4, buffer).Wait().code(),
                absl::StatusCode::kFailedPrecondition);
    } else {
      EXPECT_EQ((*c)->Pull("emb", keys, 4, first.data()).Wait().code(),
                absl::StatusCode::kUnavailable);
    }
    ASSERT_TRUE((*c)->Pull("emb", keys, 4, second.data()).Wait().ok());
    second_answered.Notify();
    // The client has taken in the late reply (and freed what it held).
    EXPECT_TRUE(SyncPoint::Get()->WaitFor("PsClient::LateReplyHandled", absl::Seconds(10)));
    EXPECT_EQ(second, std::vector<float>(1000 * 4, 2.0f));
    // The late reply is not copied into the caller's buffer of the request
    // that already failed.
    EXPECT_EQ(first, std::vector<float>(1000 * 4, 0.0f));
    std::vector<float> third(1000 * 4);
    ASSERT_TRUE((*c)->Pull("emb", keys, 4, third.data()).Wait().ok());
  }  // the client detaches, which ends the stand-in
  server.join();
  sp->DisableProcessing();
  ASSERT_EQ(pull_ranges.size(), 3u);
  const auto [a, a_bytes] = pull_ranges[0];
  const auto [b, b_bytes] = pull_ranges[1];
  EXPECT_TRUE(a + a_bytes <= b || b + b_bytes <= a)
      << "the second pull was given the range the timed-out one still held: " << a << " and " << b;
  if (first_into_buffer) {
    // Freed by the late reply (the buffer's range and the first pull's
    // keys): first fit places the third before the second.
    EXPECT_LT(pull_ranges[2].first, b);
  } else {
    // Freed by the late reply: first fit hands the same range to the third.
    EXPECT_EQ(pull_ranges[2].first, a);
  }
}

TEST(PsClientTest, TimedOutRequestKeepsItsArenaRangeUntilTheLateReply) {
  CheckTimedOutPullKeepsItsRangeUntilTheLateReply(/*first_into_buffer=*/false);
}

TEST(PsClientTest, TimedOutPullIntoADroppedBufferKeepsItsRangeUntilTheLateReply) {
  CheckTimedOutPullKeepsItsRangeUntilTheLateReply(/*first_into_buffer=*/true);
}

TEST(PsClientTest, BuffersGiveTheSameRowsAsOrdinaryMemory) {
  // The same pushes (with counts, from a buffer or a vector) and pulls (into
  // a buffer or a vector) on twin clusters. With one server the buffers are
  // in its arena and the client copies no rows; with three, or without an
  // arena, they are ordinary memory.
  const int kDim = 8;
  std::vector<uint64_t> keys = Keys(3000, 21);
  std::mt19937 rng(22);
  std::vector<float> grads = Gradients(keys.size() * kDim, rng);
  std::vector<uint32_t> counts = Counts(keys.size(), rng);
  for (int servers : {1, 3}) {
    for (size_t arena : {size_t{0}, size_t{16} << 20}) {
      Cluster plain(servers, kDim, absl::Seconds(10), arena),
          buffered(servers, kDim, absl::Seconds(10), arena);
      const bool shared = servers == 1 && arena > 0;
      std::vector<float> fresh(keys.size() * kDim), trained(keys.size() * kDim);
      ASSERT_TRUE(plain.client->Pull("emb", keys, kDim, fresh.data()).Wait().ok());
      ASSERT_TRUE(
          plain.client->Push("emb", keys, kDim, grads.data(), counts.data(), 1).Wait().ok());
      ASSERT_TRUE(plain.client->Pull("emb", keys, kDim, trained.data()).Wait().ok());

      PsBuffer in = buffered.client->NewBuffer(keys.size() * kDim),
               out = buffered.client->NewBuffer(keys.size() * kDim);
      EXPECT_EQ(in.shared(), shared) << servers << " servers, arena " << arena;
      EXPECT_EQ(out.size(), keys.size() * kDim);
      EXPECT_EQ(std::vector<float>(out.data(), out.data() + out.size()),
                std::vector<float>(out.size(), 0.0f));
      ASSERT_TRUE(buffered.client->Pull("emb", keys, kDim, out).Wait().ok());
      EXPECT_EQ(std::vector<float>(out.data(), out.data() + out.size()), fresh)
          << servers << " servers";
      std::copy(grads.begin(), grads.end(), in.data());
      ASSERT_TRUE(buffered.client->Push("emb", keys, kDim, in, counts.data(), 1).Wait().ok());
      ASSERT_TRUE(buffered.client->Pull("emb", keys, kDim, out).Wait().ok());
      EXPECT_EQ(std::vector<float>(out.data(), out.data() + out.size()), trained)
          << servers << " servers";
      EXPECT_EQ(buffered.client->zero_copy_parts(), shared ? 3u : 0u);
    }
  }
}

TEST(PsClientTest, TooSmallABufferIsRejected) {
  Cluster c(1, 8);
  std::vector<uint64_t> keys = Keys(100, 3);
  PsBuffer small = c.client->NewBuffer(99 * 8);
  absl::Status s = c.client->Pull("emb", keys, 8, small).Wait();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_NE(s.message().find("792"), std::string::npos) << s;  // the buffer's size
  EXPECT_EQ(c.client->Push("emb", keys, 8, small).Wait().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(PsClientTest, MovedFromBufferIsEmpty) {
  Cluster c(1, 8);
  std::vector<uint64_t> keys = Keys(10, 5);
  PsBuffer a = c.client->NewBuffer(keys.size() * 8);
  const float* where = a.data();
  PsBuffer b = std::move(a);
  EXPECT_EQ(b.data(), where);
  EXPECT_EQ(a.data(), nullptr);
  EXPECT_EQ(a.size(), 0u);
  EXPECT_FALSE(a.shared());
  EXPECT_EQ(c.client->Pull("emb", keys, 8, a).Wait().code(), absl::StatusCode::kInvalidArgument);
  PsBuffer d;
  d = std::move(b);
  EXPECT_EQ(b.size(), 0u);
  EXPECT_TRUE(d.shared());
  EXPECT_TRUE(c.client->Pull("emb", keys, 8, d).Wait().ok());
}

TEST(PsClientTest, BufferOutlivesItsClient) {
  PsBuffer b;
  std::vector<float> expect(50 * 8);
  {
    Cluster c(1, 8);
    std::vector<uint64_t> keys = Keys(50, 4);
    b = c.client->NewBuffer(keys.size() * 8);
    ASSERT_TRUE(b.shared());
    ASSERT_TRUE(c.client->Pull("emb", keys, 8, b).Wait().ok());
    ASSERT_TRUE(c.client->Pull("emb", keys, 8, expect.data()).Wait().ok());
  }
  // Still mapped: reading it does not fault, and it holds the rows.
  EXPECT_EQ(std::vector<float>(b.data(), b.data() + b.size()), expect);
}

TEST(PsClientTest, ManyRequestsInFlightComplete) {
  Cluster c(2);
  std::vector<std::vector<uint64_t>> keys;
  std::vector<std::vector<float>> outs;
  std::vector<PsFuture> futures;
  for (int i = 0; i < 50; ++i) {
    keys.push_back(Keys(200, 100 + i));
    outs.emplace_back(200 * 8);
  }
  for (int i = 0; i < 50; ++i) futures.push_back(c.client->Pull("emb", keys[i], 8, outs[i].data()));
  for (auto& f : futures) EXPECT_TRUE(f.Wait().ok());
  std::vector<float> expect(8);
  InitializeRow(Table(8), keys[49][199], expect.data(), 8);
  EXPECT_EQ(std::vector<float>(outs[49].end() - 8, outs[49].end()), expect);
}

TEST(PsClientTest, StatsReportEveryServer) {
  Cluster c(3);
  std::vector<uint64_t> keys = Keys(300, 5);
  std::vector<float> grads(300 * 8, 0.1f);
  ASSERT_TRUE(c.client->Push("emb", keys, 8, grads.data()).Wait().ok());
  auto stats = c.client->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  ASSERT_EQ(stats->size(), 3u);
  uint64_t rows = 0;
  for (const auto& s : *stats) rows += s.table(0).rows_in_memory();
  EXPECT_EQ(rows, 300u);
}

}  // namespace
}  // namespace ctrps
