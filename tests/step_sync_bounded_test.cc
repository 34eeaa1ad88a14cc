// Bounded staleness (TrainConfig.sparse_sync BOUNDED, ps/step_sync.h): a
// worker that stops pushing holds the others max_staleness steps ahead of
// it, and no further. Three clients of one server, driven from this thread;
// a sync point says when the server holds a pull, so the test waits on
// that, not on a clock. Built against the server library compiled with
// CTRPS_SYNC_POINTS (tests/CMakeLists.txt).
#include <atomic>
#include <memory>
#include <vector>

#include "common/sync_point.h"
#include "gtest/gtest.h"
#include "ps/ps_server.h"
#include "worker/ps_client.h"

namespace ctrps {
namespace {

constexpr int kWorkers = 3, kStalled = 2, kDim = 4, kMaxStaleness = 2;

TEST(StepSyncBoundedTest, StalledWorkerHoldsTheOthersAtMaxStalenessSteps) {
  PsServerOptions options;
  TableConfig& table = options.tables.emplace_back();
  table.set_name("emb");
  table.set_dim(kDim);
  table.mutable_optimizer()->set_kind(SparseOptimizerConfig::SGD);
  table.mutable_optimizer()->set_learning_rate(1.0f);
  table.mutable_init()->set_kind(InitializerConfig::ZEROS);
  options.step_sync.mode = TrainConfig::BOUNDED;
  options.step_sync.num_workers = kWorkers;
  PsServer server(options);
  ASSERT_TRUE(server.Start().ok());
  std::vector<std::unique_ptr<PsClient>> clients;
  for (int w = 0; w < kWorkers; ++w) {
    auto c = PsClient::Connect({.endpoints = {server.endpoint()}, .shared_memory_bytes = 0});
    ASSERT_TRUE(c.ok()) << c.status();
    clients.push_back(std::move(*c));
  }

  SyncPoint* sp = SyncPoint::Get();
  sp->ClearAll();
  std::atomic<int> held{0};
  sp->SetCallBack("StepSync::HoldPull:Held", [&](void*) { held.fetch_add(1); });
  sp->EnableProcessing();

  const std::vector<uint64_t> keys = {11, 22, 33};
  const std::vector<float> grads(keys.size() * kDim, 1.0f);
  std::vector<float> rows(keys.size() * kDim);
  auto pull = [&](int w, uint64_t step) {
    StepTag tag{.worker = w};
    if (step >= kMaxStaleness + 1) tag.wait_step = step - 1 - kMaxStaleness;
    return clients[w]->Pull("emb", keys, kDim, rows.data(), step, tag);
  };
  auto push = [&](int w, uint64_t step) {
    return clients[w]->Push("emb", keys, kDim, grads.data(), nullptr, step, 1.0f, 1.0f,
                            StepTag{.worker = w});
  };
  // The stalled worker takes part in steps 0 and 1, then stops pushing.
  for (uint64_t s = 0; s < 2; ++s) {
    for (int w = 0; w < kWorkers; ++w) {
      ASSERT_TRUE(pull(w, s).Wait().ok());
      ASSERT_TRUE(push(w, s).Wait().ok());
    }
  }
  // The others go on up to kMaxStaleness steps past it: steps 2..4 read
  // rows missing at most step 2's pushes of the stalled worker...
  for (uint64_t s = 2; s <= 2 + kMaxStaleness; ++s) {
    for (int w = 0; w < kWorkers; ++w) {
      if (w == kStalled) continue;
      ASSERT_TRUE(pull(w, s).Wait().ok()) << "step " << s;
      ASSERT_TRUE(push(w, s).Wait().ok());
    }
  }
  EXPECT_EQ(held.load(), 0);
  // ... and the pull for step 5 would miss 3 steps: the server holds it.
  PsFuture next = pull(0, 3 + kMaxStaleness);
  ASSERT_TRUE(sp->WaitFor("StepSync::HoldPull:Held", absl::Seconds(10)));
  EXPECT_FALSE(next.done());
  // Once the stalled worker pushes step 2, it is served.
  ASSERT_TRUE(push(kStalled, 2).Wait().ok());
  ASSERT_TRUE(next.Wait().ok());
  sp->DisableProcessing();
  sp->ClearAll();

  auto stats = clients[0]->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  const ServerStats& st = (*stats)[0];
  ASSERT_EQ(st.staleness_histogram_size(), StepSync::kStalenessBuckets);
  uint64_t served = 0;
  for (int i = 0; i < st.staleness_histogram_size(); ++i) {
    served += st.staleness_histogram(i);
    if (i > kMaxStaleness) EXPECT_EQ(st.staleness_histogram(i), 0u) << "staleness " << i;
  }
  EXPECT_EQ(served, 2u * kWorkers + 2u * (kMaxStaleness + 1) + 1);
  EXPECT_GT(st.staleness_histogram(kMaxStaleness), 0u);
  EXPECT_EQ(st.sync_waits(), 1u);
  // Every push was applied once (SGD, lr 1, zero init): -pushes per key.
  ASSERT_TRUE(clients[0]->Pull("emb", keys, kDim, rows.data()).Wait().ok());
  const float pushes = 2 * kWorkers + 2 * (kMaxStaleness + 1) + 1;
  for (float v : rows) EXPECT_EQ(v, -pushes);
}

}  // namespace
}  // namespace ctrps
