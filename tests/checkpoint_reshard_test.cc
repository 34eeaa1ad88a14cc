// Save a table from 2 servers, load it into 3 (and into 1): every row's
// weights, optimizer state and metadata are identical, wherever it lands.
#include <filesystem>
#include <random>
#include <vector>

#include "common/checkpoint_manifest.h"
#include "common/hash.h"
#include "gtest/gtest.h"
#include "ps/ps_server.h"
#include "worker/ps_client.h"

namespace ctrps {
namespace {

TableConfig Table() {
  TableConfig t;
  t.set_name("emb");
  t.set_dim(4);
  t.mutable_optimizer()->set_kind(SparseOptimizerConfig::ADAM);
  t.mutable_optimizer()->set_learning_rate(0.05f);
  return t;
}

struct Cluster {
  std::vector<std::unique_ptr<PsServer>> servers;
  std::unique_ptr<PsClient> client;

  Cluster(int n, const std::string& storage, int64_t memory_limit = 0) {
    std::vector<std::string> endpoints;
    for (int i = 0; i < n; ++i) {
      PsServerOptions o;
      o.shard = i;
      o.num_shards = n;
      o.tables.push_back(Table());
      o.storage_dir = storage + "/server-" + std::to_string(i);
      o.memory_limit_bytes = memory_limit;
      servers.push_back(std::make_unique<PsServer>(o));
      EXPECT_TRUE(servers.back()->Start().ok());
      endpoints.push_back(servers.back()->endpoint());
    }
    client = std::move(*PsClient::Connect({.endpoints = endpoints}));
  }
  // The stored row of `key`, from whichever server owns it.
  SparseTable::RowSnapshot Row(uint64_t key) {
    auto snap = servers[ShardOf(key, servers.size())]->table("emb")->Peek(key);
    EXPECT_TRUE(snap.ok()) << snap.status();
    return snap.ok() ? *snap : SparseTable::RowSnapshot{};
  }
};

TEST(CheckpointReshardTest, SaveWithTwoServersLoadWithThreeAndOne) {
  const std::string root = ::testing::TempDir() + "/reshard";
  std::filesystem::remove_all(root);
  const std::string ckpt = root + "/ckpt-7";
  const int kKeys = 5000;
  std::vector<uint64_t> keys(kKeys);
  for (int i = 0; i < kKeys; ++i) keys[i] = Mix64(i);
  std::vector<float> grads(kKeys * 4);
  std::mt19937 rng(3);
  {
    // A memory limit makes part of the table live on disk before the save.
    Cluster two(2, root + "/a", /*memory_limit=*/100 << 10);
    for (int step = 1; step <= 3; ++step) {
      for (auto& g : grads) g = std::normal_distribution<float>()(rng);
      ASSERT_TRUE(two.client->Push("emb", keys, 4, grads.data(), nullptr, step).Wait().ok());
    }
    auto rows = two.client->Save(ckpt, absl::Seconds(60));
    ASSERT_TRUE(rows.ok()) << rows.status();
    CheckpointManifest m;
    m.set_num_servers(2);
    auto* t = m.add_table();
    t->set_name("emb");
    t->set_id(0);
    t->set_dim(4);
    t->set_state_dim(8);
    ASSERT_TRUE(WriteCheckpointManifest(ckpt, m).ok());

    std::vector<SparseTable::RowSnapshot> before;
    for (uint64_t k : keys) before.push_back(two.Row(k));
    for (int n : {3, 1}) {
      Cluster other(n, root + "/b" + std::to_string(n));
      auto loaded = other.client->Load(ckpt, absl::Seconds(60));
      ASSERT_TRUE(loaded.ok()) << loaded.status();
      uint64_t total = 0;
      for (uint64_t r : *loaded) total += r;
      EXPECT_EQ(total, static_cast<uint64_t>(kKeys)) << n << " servers";
      for (int i = 0; i < kKeys; ++i) {
        SparseTable::RowSnapshot after = other.Row(keys[i]);
        ASSERT_EQ(after.weights, before[i].weights) << "key " << i << " with " << n << " servers";
        ASSERT_EQ(after.state, before[i].state);
        ASSERT_EQ(after.meta.updates, before[i].meta.updates);
        ASSERT_EQ(after.meta.count, before[i].meta.count);
      }
      // Loaded rows train on: a pull answers from them.
      std::vector<float> out(kKeys * 4);
      ASSERT_TRUE(other.client->Pull("emb", keys, 4, out.data()).Wait().ok());
      EXPECT_EQ(std::vector<float>(out.begin(), out.begin() + 4), before[0].weights);
    }
  }
}

TEST(CheckpointReshardTest, LoadRejectsAMismatchedTable) {
  const std::string root = ::testing::TempDir() + "/reshard-bad";
  std::filesystem::remove_all(root);
  const std::string ckpt = root + "/ckpt-1";
  Cluster one(1, root + "/a");
  std::vector<uint64_t> keys = {1, 2, 3};
  std::vector<float> g(12, 0.5f);
  ASSERT_TRUE(one.client->Push("emb", keys, 4, g.data()).Wait().ok());
  ASSERT_TRUE(one.client->Save(ckpt, absl::Seconds(30)).ok());
  CheckpointManifest m;
  m.set_num_servers(1);
  auto* t = m.add_table();
  t->set_name("emb");
  t->set_dim(8);  // not what this job has
  t->set_state_dim(16);
  ASSERT_TRUE(WriteCheckpointManifest(ckpt, m).ok());
  Cluster fresh(1, root + "/b");
  auto loaded = fresh.client->Load(ckpt, absl::Seconds(30));
  ASSERT_FALSE(loaded.ok());
  EXPECT_NE(std::string(loaded.status().message()).find("was saved with dim 8"), std::string::npos)
      << loaded.status();
  // A missing checkpoint is named.
  auto missing = fresh.client->Load(root + "/nope", absl::Seconds(30));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(std::string(missing.status().message()).find("nope/manifest.pbtxt"), std::string::npos)
      << missing.status();
}

}  // namespace
}  // namespace ctrps
