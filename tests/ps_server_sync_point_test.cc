// The server's shared-grouping fallback (PsServer::GroupShare), reached on
// purpose: sync points stall the first thread that claims a block of a split
// request until the other thread has given up waiting for it and grouped
// the whole request alone. Built against a copy of the server library
// compiled with CTRPS_SYNC_POINTS (tests/CMakeLists.txt).
#include <atomic>
#include <memory>
#include <vector>

#include "common/sync_point.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "ps/ps_server.h"
#include "worker/ps_client.h"

namespace ctrps {
namespace {

TEST(PsServerSyncPointTest, StalledBlockMakesTheOtherThreadGroupTheRequestAlone) {
  PsServerOptions options;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(
      R"(name: "emb" dim: 4 optimizer { kind: SGD learning_rate: 1 } init { kind: ZEROS })",
      &options.tables.emplace_back()));
  options.threads = 2;
  PsServer server(options);
  ASSERT_TRUE(server.Start().ok());
  // Through the socket: the server's own threads serve the request.
  auto client = PsClient::Connect({.endpoints = {server.endpoint()}, .shared_memory_bytes = 0});
  ASSERT_TRUE(client.ok()) << client.status();

  SyncPoint* sp = SyncPoint::Get();
  sp->ClearAll();
  sp->set_wait_limit(absl::Seconds(10));
  // The owner starts on its parts only once a helper has joined, so two
  // threads share the grouping.
  sp->LoadDependency({{"PsServer::HandlerLoop:Joined", "PsServer::RunSplit:Published"}});
  // The first thread to claim a block stalls before grouping it until the
  // other has gone alone; every later claim runs freely.
  std::atomic<bool> first{true};
  sp->SetCallBack("PsServer::GroupShare:BeforeBlock", [&](void*) {
    if (first.exchange(false)) {
      EXPECT_TRUE(SyncPoint::Get()->WaitFor("PsServer::GroupShare:Alone", absl::Seconds(10)));
    }
  });

  // 20,000 distinct keys: a split request of 10 blocks of 2048 keys.
  constexpr int kKeys = 20000;
  std::vector<uint64_t> keys(kKeys);
  std::vector<float> grads(kKeys * 4);
  for (int i = 0; i < kKeys; ++i) keys[i] = 1000003ull * i + 17;
  for (size_t i = 0; i < grads.size(); ++i) grads[i] = 0.001f * static_cast<float>(i % 977);
  sp->EnableProcessing();
  absl::Status pushed = (*client)->Push("emb", keys, 4, grads.data()).Wait();
  sp->DisableProcessing();
  ASSERT_TRUE(pushed.ok()) << pushed;
  EXPECT_TRUE(sp->Passed("PsServer::GroupShare:Alone"));
  EXPECT_EQ(sp->timeouts(), 0);
  sp->ClearAll();

  auto stats = (*client)->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ((*stats)[0].split_requests(), 1u);
  EXPECT_EQ((*stats)[0].split_groupings_alone(), 1u);
  // Grouped alone or shared, every key got its update once: rows = -grad.
  std::vector<float> rows(grads.size());
  ASSERT_TRUE((*client)->Pull("emb", keys, 4, rows.data()).Wait().ok());
  for (size_t i = 0; i < grads.size(); ++i) ASSERT_EQ(rows[i], -grads[i]) << "value " << i;
}

}  // namespace
}  // namespace ctrps
