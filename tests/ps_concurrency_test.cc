// Two server processes and three client processes pushing concurrently with
// SGD: every final row equals its initial value minus lr times the sum of all
// gradients pushed to it, computed sequentially here.
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <random>
#include <vector>

#include "common/hash.h"
#include "gtest/gtest.h"
#include "ps/ps_server.h"
#include "worker/ps_client.h"

namespace ctrps {
namespace {

constexpr int kServers = 2, kClients = 3, kSteps = 40, kKeysPerStep = 500, kKeySpace = 2000,
              kDim = 4;
constexpr float kLr = 0.5f;

TableConfig Table() {
  TableConfig t;
  t.set_name("emb");
  t.set_dim(kDim);
  t.mutable_init()->set_kind(InitializerConfig::UNIFORM);
  t.mutable_init()->set_scale(1.0f);
  t.mutable_optimizer()->set_kind(SparseOptimizerConfig::SGD);
  t.mutable_optimizer()->set_learning_rate(kLr);
  return t;
}

// The keys and gradients client c pushes at step s (deterministic).
void StepData(int c, int s, std::vector<uint64_t>* keys, std::vector<float>* grads) {
  std::mt19937_64 rng(c * 1000003 + s);
  keys->resize(kKeysPerStep);
  grads->resize(kKeysPerStep * kDim);
  for (auto& k : *keys) k = Mix64(rng() % kKeySpace);
  // Gradients that are exact in float and whose sums are too: multiples of 1/8.
  for (auto& g : *grads) g = static_cast<float>(static_cast<int>(rng() % 17) - 8) / 8.0f;
}

TEST(PsConcurrencyTest, ConcurrentPushesEqualSequentialSums) {
  std::vector<pid_t> servers;
  std::vector<std::string> endpoints;
  for (int i = 0; i < kServers; ++i) {
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    pid_t pid = fork();
    if (pid == 0) {
      close(fds[0]);
      PsServerOptions o;
      o.shard = i;
      o.num_shards = kServers;
      o.tables.push_back(Table());
      PsServer server(o);
      if (!server.Start().ok()) std::_Exit(1);
      std::string ep = server.endpoint();
      ep.resize(64, '\0');
      if (write(fds[1], ep.data(), 64) != 64) std::_Exit(1);
      server.Wait();
      server.Stop();
      std::_Exit(0);
    }
    close(fds[1]);
    char buf[64];
    ASSERT_EQ(read(fds[0], buf, 64), 64);
    close(fds[0]);
    servers.push_back(pid);
    endpoints.emplace_back(buf);
  }
  std::vector<pid_t> clients;
  for (int c = 0; c < kClients; ++c) {
    pid_t pid = fork();
    if (pid == 0) {
      auto client = PsClient::Connect({.endpoints = endpoints});
      if (!client.ok()) std::_Exit(2);
      std::vector<uint64_t> keys;
      std::vector<float> grads;
      for (int s = 0; s < kSteps; ++s) {
        StepData(c, s, &keys, &grads);
        if (!(*client)->Push("emb", keys, kDim, grads.data()).Wait().ok()) std::_Exit(3);
      }
      std::_Exit(0);
    }
    clients.push_back(pid);
  }
  for (pid_t pid : clients) {
    int status = 0;
    waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "a client process failed";
  }

  // Sequential reference.
  std::vector<double> sum(kKeySpace * kDim, 0.0);
  std::vector<uint64_t> keys;
  std::vector<float> grads;
  std::vector<uint64_t> all_keys(kKeySpace);
  for (int i = 0; i < kKeySpace; ++i) all_keys[i] = Mix64(i);
  for (int c = 0; c < kClients; ++c) {
    for (int s = 0; s < kSteps; ++s) {
      StepData(c, s, &keys, &grads);
      std::mt19937_64 rng(c * 1000003 + s);
      for (int j = 0; j < kKeysPerStep; ++j) {
        int row = static_cast<int>(rng() % kKeySpace);
        for (int d = 0; d < kDim; ++d) sum[row * kDim + d] += grads[j * kDim + d];
      }
    }
  }
  // Only now does this process use ZeroMQ (children were forked before).
  auto client = PsClient::Connect({.endpoints = endpoints});
  ASSERT_TRUE(client.ok()) << client.status();
  std::vector<float> got(kKeySpace * kDim);
  ASSERT_TRUE((*client)->Pull("emb", all_keys, kDim, got.data()).Wait().ok());
  std::vector<float> init(kDim);
  int mismatches = 0;
  for (int i = 0; i < kKeySpace; ++i) {
    InitializeRow(Table(), all_keys[i], init.data(), kDim);
    for (int d = 0; d < kDim; ++d) {
      // SGD is linear in the gradients, so the order of pushes does not
      // matter; a lost or doubled push moves a value by at least lr/8.
      double expect = init[d] - kLr * sum[i * kDim + d];
      if (std::fabs(got[i * kDim + d] - expect) > 1e-4 * (1 + std::fabs(expect))) ++mismatches;
    }
  }
  EXPECT_EQ(mismatches, 0);
  auto stats = (*client)->Stats();
  ASSERT_TRUE(stats.ok());
  uint64_t pushed = 0;
  for (const auto& s : *stats) pushed += s.table(0).pushed_keys();
  EXPECT_EQ(pushed, static_cast<uint64_t>(kClients) * kSteps * kKeysPerStep);
  ASSERT_TRUE((*client)->Shutdown().ok());
  for (pid_t pid : servers) waitpid(pid, nullptr, 0);
}

}  // namespace
}  // namespace ctrps
