#include "worker/ps_client.h"

#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "ps/ps_server.h"

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

TEST(PsClientTest, NewKeyRowsAreIdenticalWithOneTwoThreeServers) {
  const int kDim = 8;
  std::vector<uint64_t> keys = Keys(3000, 1);
  std::vector<float> grads(keys.size() * kDim);
  std::mt19937 rng(2);
  for (auto& g : grads) g = std::normal_distribution<float>()(rng);
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
  // 3000 keys of dim 8 need 132 KB of arena: with a 64 KB arena they go
  // through the socket, the 100-key requests through the arena.
  const int kDim = 8;
  std::vector<uint64_t> big = Keys(3000, 7), small(big.begin(), big.begin() + 100);
  std::vector<float> grads(big.size() * kDim);
  std::mt19937 rng(8);
  for (auto& g : grads) g = std::normal_distribution<float>()(rng);
  std::vector<uint32_t> counts(big.size());
  for (auto& c : counts) c = 1 + rng() % 3;
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
  EXPECT_NE(std::string(c.status().message()).find("server 0 (tcp://127.0.0.1:9)"), std::string::npos)
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
