// Synchronous training across processes (TrainConfig.sparse_sync SYNC,
// ps/step_sync.h): two server processes and one or three worker processes
// run the same global batches. Each step a worker pulls its keys (waiting
// for the previous step), then pushes the summed gradients of its share of
// the step's samples. With one worker and with three, every pulled row and
// every final row must be the same: one Adam step per key per global step.
// A worker killed mid-run makes the others stop with an error naming it,
// with the pushes that reached the servers applied.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "common/hash.h"
#include "gtest/gtest.h"
#include "ps/ps_server.h"
#include "ps/sparse_optimizer.h"
#include "worker/ps_client.h"

namespace ctrps {
namespace {

constexpr int kServers = 2, kSteps = 12, kSamplesPerStep = 600, kKeySpace = 400, kDim = 4;

TableConfig Table(SparseOptimizerConfig::Kind kind) {
  TableConfig t;
  t.set_name("emb");
  t.set_dim(kDim);
  t.mutable_init()->set_kind(InitializerConfig::UNIFORM);
  t.mutable_init()->set_scale(0.5f);
  t.mutable_optimizer()->set_kind(kind);
  t.mutable_optimizer()->set_learning_rate(kind == SparseOptimizerConfig::SGD ? 0.5f : 0.05f);
  return t;
}

// Sample j of step s: a key (skewed, so many keys are in several workers'
// shares) and a gradient that is a multiple of 1/64, so that sums of a
// step's gradients are exact in float whatever their order.
struct Sample {
  uint64_t key;
  float grad[kDim];
};
Sample StepSample(int s, int j) {
  std::mt19937_64 rng(static_cast<uint64_t>(s) * 1000003 + j);
  Sample x;
  const uint64_t r = rng() % kKeySpace;
  x.key = Mix64(r * r % kKeySpace);
  for (float& g : x.grad) g = static_cast<float>(static_cast<int>(rng() % 33) - 16) / 64.0f;
  return x;
}

// Worker w of W: its share of step s (samples j with j % W == w), summed
// per key, in first-seen order.
void WorkerShare(int s, int w, int W, std::vector<uint64_t>* keys, std::vector<float>* grads,
                 std::vector<uint32_t>* counts) {
  keys->clear();
  grads->clear();
  counts->clear();
  absl::flat_hash_map<uint64_t, size_t> at;
  for (int j = w; j < kSamplesPerStep; j += W) {
    Sample x = StepSample(s, j);
    auto [it, inserted] = at.try_emplace(x.key, keys->size());
    if (inserted) {
      keys->push_back(x.key);
      grads->insert(grads->end(), x.grad, x.grad + kDim);
      counts->push_back(1);
    } else {
      for (int d = 0; d < kDim; ++d) (*grads)[it->second * kDim + d] += x.grad[d];
      ++(*counts)[it->second];
    }
  }
}

std::vector<uint64_t> AllKeys() {
  std::vector<uint64_t> keys;
  for (int i = 0; i < kKeySpace; ++i) keys.push_back(Mix64(i));
  return keys;
}

class Cluster {
 public:
  // Forks the server processes (before this process touches ZeroMQ).
  Cluster(const TableConfig& table, TrainConfig::SparseSync mode, int workers,
          absl::Duration timeout = absl::Seconds(20)) {
    for (int i = 0; i < kServers; ++i) {
      int fds[2];
      if (pipe(fds) != 0) std::abort();
      pid_t pid = fork();
      if (pid == 0) {
        close(fds[0]);
        PsServerOptions o;
        o.shard = i;
        o.num_shards = kServers;
        o.tables.push_back(table);
        o.step_sync.mode = mode;
        o.step_sync.num_workers = workers;
        o.step_sync.timeout = timeout;
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
      if (read(fds[0], buf, 64) != 64) std::abort();
      close(fds[0]);
      servers_.push_back(pid);
      endpoints_.emplace_back(buf);
    }
  }
  const std::vector<std::string>& endpoints() const { return endpoints_; }
  // Shuts the servers down through `client` and reaps them.
  void Shutdown(PsClient& client) {
    EXPECT_TRUE(client.Shutdown().ok());
    for (pid_t pid : servers_) waitpid(pid, nullptr, 0);
  }

 private:
  std::vector<pid_t> servers_;
  std::vector<std::string> endpoints_;
};

// Worker process body: for each step, a tagged pull of its keys (saved to
// `pulled_path` when given), then a tagged push. Exits 0 on success, or
// writes the first error to `error_fd` and exits 3. With kill_before_step
// >= 0, kills itself (SIGKILL) before pushing that step.
[[noreturn]] void RunWorker(const std::vector<std::string>& endpoints, int w, int W,
                            const std::string& pulled_path, int kill_before_step, int error_fd) {
  auto client = PsClient::Connect({.endpoints = endpoints});
  if (!client.ok()) std::_Exit(2);
  std::FILE* pulled = pulled_path.empty() ? nullptr : std::fopen(pulled_path.c_str(), "wb");
  std::vector<uint64_t> keys;
  std::vector<float> grads, rows;
  std::vector<uint32_t> counts;
  std::vector<PsFuture> pushes;
  auto fail = [&](const absl::Status& s) {
    std::string m(s.ToString());
    m.resize(1024, '\0');
    if (error_fd >= 0 && write(error_fd, m.data(), m.size()) < 0) std::_Exit(4);
    std::_Exit(3);
  };
  for (int s = 0; s < kSteps; ++s) {
    WorkerShare(s, w, W, &keys, &grads, &counts);
    StepTag tag{.worker = w, .first_step = 0};
    if (s > 0) tag.wait_step = s - 1;
    rows.resize(keys.size() * kDim);
    absl::Status st = (*client)->Pull("emb", keys, kDim, rows.data(), s, tag).Wait();
    if (!st.ok()) fail(st);
    if (pulled != nullptr) {
      // Each key's pulled row, as (step, key, row).
      const uint64_t step = s;
      for (size_t i = 0; i < keys.size(); ++i) {
        std::fwrite(&step, sizeof(uint64_t), 1, pulled);
        std::fwrite(&keys[i], sizeof(uint64_t), 1, pulled);
        std::fwrite(&rows[i * kDim], sizeof(float), kDim, pulled);
      }
    }
    if (s == kill_before_step) raise(SIGKILL);
    StepTag push_tag{.worker = w, .first_step = 0};
    pushes.push_back((*client)->Push("emb", keys, kDim, grads.data(), counts.data(), s, 1.0f,
                                     static_cast<float>(1.0 / W), push_tag));
    // The next step's pull waits for this one: keep the buffers alive.
    st = pushes.back().Wait();
    if (!st.ok()) fail(st);
  }
  if (pulled != nullptr) std::fclose(pulled);
  std::_Exit(0);
}

struct RunResult {
  std::vector<float> rows;  // AllKeys() x kDim after the last step
  // What worker 0 pulled: (step, key) -> row.
  absl::flat_hash_map<std::pair<uint64_t, uint64_t>, std::vector<float>> pulled;
};

// Runs kSteps with W worker processes; returns the final rows and what
// worker 0 pulled.
RunResult RunJob(const TableConfig& table, TrainConfig::SparseSync mode, int W) {
  Cluster cluster(table, mode, W);
  const std::string pulled_path = ::testing::TempDir() + "/sync_steps_pulled_" +
                                  std::to_string(getpid()) + "_" + std::to_string(W);
  std::vector<pid_t> workers;
  for (int w = 0; w < W; ++w) {
    pid_t pid = fork();
    if (pid == 0) RunWorker(cluster.endpoints(), w, W, w == 0 ? pulled_path : "", -1, -1);
    workers.push_back(pid);
  }
  for (pid_t pid : workers) {
    int status = 0;
    waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "a worker process failed";
  }
  RunResult result;
  auto client = PsClient::Connect({.endpoints = cluster.endpoints()});
  EXPECT_TRUE(client.ok()) << client.status();
  if (!client.ok()) return result;
  const std::vector<uint64_t> keys = AllKeys();
  result.rows.resize(keys.size() * kDim);
  EXPECT_TRUE((*client)->Pull("emb", keys, kDim, result.rows.data()).Wait().ok());
  cluster.Shutdown(**client);
  std::FILE* in = std::fopen(pulled_path.c_str(), "rb");
  EXPECT_NE(in, nullptr);
  if (in == nullptr) return result;
  uint64_t step, key;
  std::vector<float> row(kDim);
  while (std::fread(&step, sizeof(step), 1, in) == 1 && std::fread(&key, sizeof(key), 1, in) == 1 &&
         std::fread(row.data(), sizeof(float), kDim, in) == kDim) {
    result.pulled[{step, key}] = row;
  }
  std::fclose(in);
  std::remove(pulled_path.c_str());
  return result;
}

// Largest |a - b| over the rows.
float MaxDiff(const std::vector<float>& a, const std::vector<float>& b) {
  float m = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return a.size() == b.size() ? m : 1e30f;
}

TEST(SyncStepsTest, OneAndThreeWorkersGiveEqualRowsAfterSyncSteps) {
  const TableConfig table = Table(SparseOptimizerConfig::ADAM);
  RunResult one = RunJob(table, TrainConfig::SYNC, 1);
  RunResult three = RunJob(table, TrainConfig::SYNC, 3);
  ASSERT_EQ(one.rows.size(), static_cast<size_t>(kKeySpace * kDim));
  // The step sums are exact, so the rows agree to the last bit; the
  // tolerance only allows for a compiler's contraction of Adam's formula.
  EXPECT_LT(MaxDiff(one.rows, three.rows), 1e-6f);
  // What worker 0 of three pulled at each step (a third of the samples'
  // keys) equals what the single worker pulled for those keys at that
  // step: every pull saw all of the previous step.
  int differing = 0;
  for (const auto& [step_key, row] : three.pulled) {
    auto it = one.pulled.find(step_key);
    ASSERT_NE(it, one.pulled.end()) << "the single worker pulls every key of every step";
    differing += MaxDiff(row, it->second) >= 1e-6f;
  }
  EXPECT_GT(three.pulled.size(), static_cast<size_t>(kSteps * 20));
  EXPECT_EQ(differing, 0);
}

TEST(SyncStepsTest, AsyncThreeWorkersDifferFromOne) {
  // The same pushes applied one by one (ASYNC, untagged: a key seen by
  // three workers takes three Adam steps) move rows away from the
  // one-worker result: the test above can fail.
  const TableConfig table = Table(SparseOptimizerConfig::ADAM);
  RunResult one = RunJob(table, TrainConfig::SYNC, 1);
  RunResult three = RunJob(table, TrainConfig::ASYNC, 3);
  EXPECT_GT(MaxDiff(one.rows, three.rows), 1e-3f);
}

TEST(SyncStepsTest, KilledWorkerStopsTheOthersNamingItAndNoPushIsLost) {
  // SGD: rows are init - lr * (sum of every gradient applied), so the
  // final rows tell exactly which pushes were applied.
  const TableConfig table = Table(SparseOptimizerConfig::SGD);
  constexpr int W = 3, kKilled = 2, kKillStep = 4;
  const auto start = std::chrono::steady_clock::now();
  Cluster cluster(table, TrainConfig::SYNC, W, absl::Milliseconds(3000));
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  std::vector<pid_t> workers;
  for (int w = 0; w < W; ++w) {
    pid_t pid = fork();
    if (pid == 0) {
      close(fds[0]);
      RunWorker(cluster.endpoints(), w, W, "", w == kKilled ? kKillStep : -1, fds[1]);
    }
    workers.push_back(pid);
  }
  close(fds[1]);
  for (int w = 0; w < W; ++w) {
    int status = 0;
    waitpid(workers[w], &status, 0);
    if (w == kKilled) {
      EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    } else {
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 3)
          << "worker " << w << " did not stop with an error";
    }
  }
  std::vector<std::string> errors;
  char buf[1024];
  while (read(fds[0], buf, sizeof(buf)) == static_cast<ssize_t>(sizeof(buf))) {
    errors.emplace_back(buf);
  }
  close(fds[0]);
  ASSERT_EQ(errors.size(), 2u);
  for (const std::string& e : errors) {
    EXPECT_NE(e.find("DEADLINE_EXCEEDED"), std::string::npos) << e;
    EXPECT_NE(e.find("worker 2 (last push: step 3)"), std::string::npos) << e;
  }
  // Nobody waited past the step deadline and the client timeout by much.
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(25));

  // Applied: steps 0-3 from all three, and step 4 from workers 0 and 1
  // (they pushed it; the servers applied what arrived when they gave up).
  std::vector<double> sum(kKeySpace * kDim, 0.0);
  const std::vector<uint64_t> keys = AllKeys();
  absl::flat_hash_map<uint64_t, int> index;
  for (int i = 0; i < kKeySpace; ++i) index[keys[i]] = i;
  std::vector<uint64_t> k;
  std::vector<float> g;
  std::vector<uint32_t> c;
  for (int s = 0; s <= kKillStep; ++s) {
    for (int w = 0; w < W; ++w) {
      if (s == kKillStep && w == kKilled) continue;
      WorkerShare(s, w, W, &k, &g, &c);
      for (size_t i = 0; i < k.size(); ++i)
        for (int d = 0; d < kDim; ++d) sum[index[k[i]] * kDim + d] += g[i * kDim + d];
    }
  }
  auto client = PsClient::Connect({.endpoints = cluster.endpoints()});
  ASSERT_TRUE(client.ok()) << client.status();
  std::vector<float> got(keys.size() * kDim), init(kDim);
  ASSERT_TRUE((*client)->Pull("emb", keys, kDim, got.data()).Wait().ok());
  int mismatches = 0;
  for (int i = 0; i < kKeySpace; ++i) {
    InitializeRow(table, keys[i], init.data(), kDim);
    for (int d = 0; d < kDim; ++d) {
      const double expect = init[d] - 0.5 * sum[i * kDim + d];
      if (std::fabs(got[i * kDim + d] - expect) > 1e-5 * (1 + std::fabs(expect))) ++mismatches;
    }
  }
  EXPECT_EQ(mismatches, 0);
  cluster.Shutdown(**client);
}

}  // namespace
}  // namespace ctrps
