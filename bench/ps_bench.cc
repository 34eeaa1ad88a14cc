// ps_bench: pull and push throughput of the parameter server on loopback.
//
// Forks S server processes and C client processes (the parent only
// coordinates through pipes), fills a table of --table_rows rows, then each
// client keeps --inflight requests of --keys_per_request unique keys in
// flight, first pulling, then pushing, for --seconds each.
//
//   ps_bench --servers 1 --clients 1 --keys_per_request 100000 --dim 16
//            --table_rows 10000000 [--memory_limit_mb 200] [--distribution zipf]
//
// Prints a table, then one JSON line with pull_keys_per_sec and
// push_keys_per_sec.
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "common/config.h"
#include "common/flags_util.h"
#include "common/hash.h"
#include "common/security.h"
#include "gflags/gflags.h"
#include "ps/ps_server.h"
#include "worker/ps_client.h"

DEFINE_int32(servers, 1, "server processes");
DEFINE_int32(clients, 1, "client processes");
DEFINE_int32(keys_per_request, 100000, "unique keys per pull/push request");
DEFINE_int32(dim, 16, "embedding dimension");
DEFINE_int64(table_rows, 10000000, "rows in the table (filled before timing)");
DEFINE_string(distribution, "uniform", "key distribution: uniform or zipf");
DEFINE_double(zipf_s, 0.99, "zipf exponent");
DEFINE_int32(key_sets, 64,
             "distinct requests each client draws before timing and cycles through; their "
             "keys must far outnumber the rows a memory limit keeps resident, or an "
             "over-the-limit run turns into an in-memory one after the first cycle");
DEFINE_int64(memory_limit_mb, 0, "memory limit per server (0: none); rows past it spill to disk");
DEFINE_string(optimizer, "adagrad", "sgd, adagrad, adam or ftrl");
DEFINE_double(seconds, 5, "seconds per phase (pull, then push)");
DEFINE_double(warmup_seconds, 0,
              "untimed pushes before the timed phases, so that an over-the-limit table's "
              "memory holds the rows the pushes made hot, as in training");
DEFINE_int32(inflight, 2, "requests in flight per client");
DEFINE_int32(server_threads, 2, "request threads per server");
DEFINE_string(storage_dir, "/tmp/ps_bench", "where servers keep spilled rows");
DEFINE_string(
    rss_log, "",
    "write each server's resident memory (VmRSS, MB) and the storage dir's free disk (MB) every "
    "--rss_interval seconds to this CSV file");
DEFINE_double(rss_interval, 10, "seconds between --rss_log samples");
DEFINE_int64(min_free_disk_mb, 1024,
             "spills stop with an error rather than leave less free on --storage_dir");
DEFINE_string(transport, "tcp", "tcp (loopback) or ipc (unix socket)");
DEFINE_int64(shared_memory_mb, 256,
             "shared-memory arena per server for the bulk data of requests (clients and servers "
             "share this host); 0: keys and values go through the socket too");
DEFINE_bool(
    ps_buffers, true,
    "pull into and push from PsClient::NewBuffer buffers (with one server: in its shared arena, "
    "so the client copies no rows); false: ordinary vectors, which requests copy");

DEFINE_bool(curve, false,
            "CURVE authentication and encryption between clients and servers, and the job's "
            "secret on every request, as a job spanning hosts has");

namespace ctrps {
namespace {

using Clock = std::chrono::steady_clock;

// The job's secrets, drawn before the servers are forked so that both sides
// hold them. Empty unless --curve.
JobSecrets g_secrets;

TableConfig BenchTable() {
  TableConfig t;
  t.set_name("emb");
  t.set_dim(FLAGS_dim);
  SparseOptimizerConfig::Kind kind = SparseOptimizerConfig::ADAGRAD;
  SparseOptimizerConfig_Kind_Parse(absl::AsciiStrToUpper(FLAGS_optimizer), &kind);
  t.mutable_optimizer()->set_kind(kind);
  t.mutable_init()->set_kind(InitializerConfig::UNIFORM);
  t.mutable_init()->set_scale(0.01f);
  return t;
}

uint64_t KeyOfRow(uint64_t row) { return Mix64(row + 1); }

// Key sets for requests, drawn before timing starts.
std::vector<std::vector<uint64_t>> MakeKeySets(int count, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> unit(0, 1);
  const uint64_t n = FLAGS_table_rows;
  const double s = FLAGS_zipf_s;
  const double a = std::pow(static_cast<double>(n), 1 - s) - 1;
  std::vector<std::vector<uint64_t>> sets(count);
  absl::flat_hash_set<uint64_t> seen;
  for (auto& set : sets) {
    seen.clear();
    set.clear();
    const size_t want = std::min<uint64_t>(FLAGS_keys_per_request, n);
    while (set.size() < want) {
      uint64_t row;
      if (FLAGS_distribution == "zipf") {
        // Inverse CDF of the continuous power law, rank 1..n.
        row = static_cast<uint64_t>(std::pow(a * unit(rng) + 1, 1 / (1 - s))) - 1;
        row = std::min(row, n - 1);
      } else {
        row = rng() % n;
      }
      if (seen.insert(row).second) set.push_back(KeyOfRow(row));
    }
  }
  return sets;
}

struct PhaseResult {
  double keys = 0, seconds = 0, p50_ms = 0, p99_ms = 0;
  double memory_hit_rate = 0;  // of the keys the servers looked up during the phase
};

// (memory hits, disk hits) of the bench table, summed over the servers.
std::pair<uint64_t, uint64_t> Hits(PsClient& client) {
  auto stats = client.Stats();
  if (!stats.ok()) {
    std::fprintf(stderr, "ps_bench: stats failed: %s\n", stats.status().ToString().c_str());
    std::_Exit(1);
  }
  std::pair<uint64_t, uint64_t> h{0, 0};
  for (const auto& s : *stats) {
    h.first += s.table(0).memory_hits();
    h.second += s.table(0).disk_hits();
  }
  return h;
}

// When Main began: phases print their start against it, as --rss_log's
// samples count from it.
Clock::time_point g_start;

PhaseResult RunPhase(PsClient& client, bool push, const std::vector<std::vector<uint64_t>>& sets,
                     double seconds) {
  std::printf("  [%.0f s] %s phase, %.0f s\n",
              std::chrono::duration<double>(Clock::now() - g_start).count(), push ? "push" : "pull",
              seconds);
  std::fflush(stdout);
  const auto hits_before = Hits(client);
  const int dim = FLAGS_dim;
  const int depth = std::max(1, FLAGS_inflight);
  std::vector<PsBuffer> buffers;
  std::vector<std::vector<float>> vectors;
  for (int i = 0; i < depth; ++i) {
    const size_t floats = static_cast<size_t>(FLAGS_keys_per_request) * dim;
    if (FLAGS_ps_buffers) {
      buffers.push_back(client.NewBuffer(floats));
      std::fill(buffers.back().data(), buffers.back().data() + floats, 0.001f);
    } else {
      vectors.emplace_back(floats, 0.001f);
    }
  }
  std::vector<PsFuture> futures(depth);
  std::vector<Clock::time_point> started(depth);
  std::vector<double> latencies;
  double keys = 0;
  size_t next = 0;
  auto submit = [&](int slot) {
    const auto& set = sets[next++ % sets.size()];
    started[slot] = Clock::now();
    if (FLAGS_ps_buffers) {
      futures[slot] = push ? client.Push("emb", set, dim, buffers[slot])
                           : client.Pull("emb", set, dim, buffers[slot]);
    } else {
      futures[slot] = push ? client.Push("emb", set, dim, vectors[slot].data())
                           : client.Pull("emb", set, dim, vectors[slot].data());
    }
    return set.size();
  };
  std::vector<size_t> sizes(depth);
  // Each phase goes on through the key sets where the last one stopped, so
  // that a timed phase does not meet the keys a warm-up just brought into
  // memory.
  static size_t next_set = 0;
  next = next_set;
  absl::Cleanup keep = [&] { next_set = next; };
  const auto begin = Clock::now();
  const auto end = begin + std::chrono::duration<double>(seconds);
  for (int i = 0; i < depth; ++i) sizes[i] = submit(i);
  for (int slot = 0;; slot = (slot + 1) % depth) {
    absl::Status s = futures[slot].Wait();
    if (!s.ok()) {
      std::fprintf(stderr, "ps_bench: %s failed: %s\n", push ? "push" : "pull",
                   s.ToString().c_str());
      std::_Exit(1);
    }
    auto now = Clock::now();
    latencies.push_back(std::chrono::duration<double, std::milli>(now - started[slot]).count());
    keys += sizes[slot];
    if (now >= end) {
      for (int i = 1; i < depth; ++i) {
        int other = (slot + i) % depth;
        if (futures[other].Wait().ok()) keys += sizes[other];
      }
      break;
    }
    sizes[slot] = submit(slot);
  }
  PhaseResult r;
  r.keys = keys;
  r.seconds = std::chrono::duration<double>(Clock::now() - begin).count();
  std::sort(latencies.begin(), latencies.end());
  r.p50_ms = latencies[latencies.size() / 2];
  r.p99_ms = latencies[std::min(latencies.size() - 1, latencies.size() * 99 / 100)];
  const auto hits_after = Hits(client);
  const double memory = hits_after.first - hits_before.first,
               disk = hits_after.second - hits_before.second;
  r.memory_hit_rate = memory / std::max(1.0, memory + disk);
  return r;
}

std::unique_ptr<PsClient> ConnectOrDie(const std::vector<std::string>& endpoints) {
  PsClientOptions o;
  o.endpoints = endpoints;
  o.timeout = absl::Seconds(120);
  o.shared_memory_bytes = static_cast<size_t>(FLAGS_shared_memory_mb) << 20;
  if (FLAGS_curve) {
    o.auth_token = g_secrets.chief_token;  // the bench's clients also stop the servers
    o.curve_server_public_key = g_secrets.server_public_key;
    o.curve_public_key = g_secrets.client_public_key;
    o.curve_secret_key = g_secrets.client_secret_key;
  }
  auto c = PsClient::Connect(o);
  if (!c.ok()) {
    std::fprintf(stderr, "ps_bench: %s\n", c.status().ToString().c_str());
    std::_Exit(1);
  }
  if (o.shared_memory_bytes > 0 && (*c)->num_shared_memory_shards() != (*c)->num_shards()) {
    std::fprintf(stderr,
                 "ps_bench: only %d of %d servers took a shared arena; the rest use the socket\n",
                 (*c)->num_shared_memory_shards(), (*c)->num_shards());
  }
  return std::move(*c);
}

void WriteAll(int fd, const void* p, size_t n) {
  const char* c = static_cast<const char*>(p);
  while (n > 0) {
    ssize_t w = write(fd, c, n);
    if (w <= 0) std::_Exit(2);
    c += w;
    n -= w;
  }
}
bool ReadAll(int fd, void* p, size_t n) {
  char* c = static_cast<char*>(p);
  while (n > 0) {
    ssize_t r = read(fd, c, n);
    if (r <= 0) return false;
    c += r;
    n -= r;
  }
  return true;
}

// Runs `body` in a child process; returns its pid and the read end of a pipe
// the child writes to.
template <typename F>
std::pair<pid_t, int> Spawn(F body) {
  int fds[2];
  if (pipe(fds) != 0) std::_Exit(3);
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    body(fds[1]);
    std::_Exit(0);  // no destructors: nothing of the parent's is ours to clean
  }
  close(fds[1]);
  return {pid, fds[0]};
}

// Samples each server's VmRSS and the storage dir's free disk every
// --rss_interval seconds into --rss_log, from a thread of the parent; keeps
// the peaks for the summary.
class RssSampler {
 public:
  RssSampler(std::vector<pid_t> pids, std::string path)
      : pids_(std::move(pids)), out_(path), thread_([this] { Run(); }) {
    out_ << "seconds,phase";
    for (size_t i = 0; i < pids_.size(); ++i) out_ << ",server" << i << "_rss_mb";
    // Bytes the servers' reads fetched from the storage device (not the
    // page cache), from /proc/PID/io: divided by 4096 and by time, the
    // device's read IOPS that the run used.
    out_ << ",free_disk_mb,device_read_mb\n";
  }
  ~RssSampler() {
    stop_ = true;
    thread_.join();
  }
  void set_phase(const char* phase) { phase_ = phase; }
  double peak_rss_mb() const { return peak_rss_mb_; }
  double min_free_disk_mb() const { return min_free_mb_; }

 private:
  // The number after `field` in /proc/PID/<file>, or 0.
  static double ProcField(pid_t pid, const char* file, const std::string& field) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/" + file);
    std::string key;
    while (in >> key) {
      if (key == field) {
        double value = 0;
        in >> value;
        return value;
      }
    }
    return 0;
  }
  static double DeviceReadMb(pid_t pid) { return ProcField(pid, "io", "read_bytes:") / 1048576.0; }
  static double RssMb(pid_t pid) { return ProcField(pid, "status", "VmRSS:") / 1024; }
  void Run() {
    const auto start = Clock::now();
    auto next = start;
    while (!stop_) {
      if (Clock::now() >= next) {
        out_ << absl::StrFormat(
            "%.0f,%s", std::chrono::duration<double>(Clock::now() - start).count(), phase_.load());
        for (pid_t pid : pids_) {
          const double rss = RssMb(pid);
          peak_rss_mb_ = std::max(peak_rss_mb_.load(), rss);
          out_ << absl::StrFormat(",%.0f", rss);
        }
        struct statvfs vfs;
        double free_mb = 0;
        if (statvfs(FLAGS_storage_dir.c_str(), &vfs) == 0)
          free_mb = double(vfs.f_bavail) * vfs.f_frsize / 1048576.0;
        min_free_mb_ = std::min(min_free_mb_.load(), free_mb);
        double device_mb = 0;
        for (pid_t pid : pids_) device_mb += DeviceReadMb(pid);
        out_ << absl::StrFormat(",%.0f,%.1f\n", free_mb, device_mb);
        out_.flush();
        next += std::chrono::duration_cast<Clock::duration>(
            std::chrono::duration<double>(FLAGS_rss_interval));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }
  const std::vector<pid_t> pids_;
  std::ofstream out_;
  std::atomic<const char*> phase_{"fill"};
  std::atomic<double> peak_rss_mb_{0}, min_free_mb_{1e18};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

int Main() {
  std::printf(
      "ps_bench: %d server(s), %d client(s), %d keys/request, dim %d, %lld rows, %s keys, "
      "memory limit %lld MB, %s\n",
      FLAGS_servers, FLAGS_clients, FLAGS_keys_per_request, FLAGS_dim,
      static_cast<long long>(FLAGS_table_rows), FLAGS_distribution.c_str(),
      static_cast<long long>(FLAGS_memory_limit_mb), FLAGS_optimizer.c_str());
  std::fflush(stdout);
  std::vector<pid_t> pids;
  std::vector<std::string> endpoints;
  if (FLAGS_curve) {
    auto secrets = NewJobSecrets();
    if (!secrets.ok() || !secrets->has_curve_keys()) {
      std::fprintf(stderr, "ps_bench: --curve: no CURVE keys (%s)\n",
                   secrets.status().ToString().c_str());
      return 1;
    }
    g_secrets = *secrets;
  }
  for (int i = 0; i < FLAGS_servers; ++i) {
    auto [pid, fd] = Spawn([i](int out) {
      PsServerOptions o;
      o.shard = i;
      o.num_shards = FLAGS_servers;
      o.threads = FLAGS_server_threads;
      o.memory_limit_bytes = FLAGS_memory_limit_mb << 20;
      o.min_free_disk_bytes = static_cast<uint64_t>(FLAGS_min_free_disk_mb) << 20;
      o.storage_dir = absl::StrFormat("%s/server-%d", FLAGS_storage_dir, i);
      o.tables.push_back(BenchTable());
      if (FLAGS_curve) {
        o.member_token = g_secrets.member_token;
        o.chief_token = g_secrets.chief_token;
        o.curve_server_secret_key = g_secrets.server_secret_key;
        o.curve_client_public_key = g_secrets.client_public_key;
      }
      if (FLAGS_transport == "ipc")
        o.bind = absl::StrFormat("ipc:///tmp/ps_bench-%d-%d", getpid(), i);
      PsServer server(o);
      absl::Status s = server.Start();
      std::string ep = s.ok() ? server.endpoint() : "error: " + s.ToString();
      uint32_t n = ep.size();
      WriteAll(out, &n, 4);
      WriteAll(out, ep.data(), n);
      if (!s.ok()) std::_Exit(1);
      server.Wait();
      server.Stop();
    });
    uint32_t n = 0;
    std::string ep;
    if (ReadAll(fd, &n, 4)) {
      ep.resize(n);
      ReadAll(fd, ep.data(), n);
    }
    close(fd);
    if (ep.empty() || ep.rfind("error", 0) == 0) {
      std::fprintf(stderr, "ps_bench: server %d did not start: %s\n", i, ep.c_str());
      return 1;
    }
    pids.push_back(pid);
    endpoints.push_back(ep);
  }

  g_start = Clock::now();
  std::unique_ptr<RssSampler> sampler;
  if (!FLAGS_rss_log.empty()) sampler = std::make_unique<RssSampler>(pids, FLAGS_rss_log);
  // Fill the table.
  auto fill_start = Clock::now();
  auto [fill_pid, fill_fd] = Spawn([&endpoints](int out) {
    auto client = ConnectOrDie(endpoints);
    const int chunk = 100000;
    std::vector<uint64_t> keys(chunk);
    std::vector<float> grads(static_cast<size_t>(chunk) * FLAGS_dim, 0.001f);
    int64_t last_report = 0;
    for (int64_t row = 0; row < FLAGS_table_rows; row += chunk) {
      int n = static_cast<int>(std::min<int64_t>(chunk, FLAGS_table_rows - row));
      for (int i = 0; i < n; ++i) keys[i] = KeyOfRow(row + i);
      absl::Status s =
          client->Push("emb", {keys.data(), static_cast<size_t>(n)}, FLAGS_dim, grads.data())
              .Wait();
      if (!s.ok()) {
        std::fprintf(stderr, "ps_bench: fill failed: %s\n", s.ToString().c_str());
        std::_Exit(1);
      }
      if (row - last_report >= 2000000) {
        std::printf("  filled %lld / %lld rows\n", static_cast<long long>(row),
                    static_cast<long long>(FLAGS_table_rows));
        std::fflush(stdout);
        last_report = row;
      }
    }
    char ok = 1;
    WriteAll(out, &ok, 1);
  });
  char ok = 0;
  ReadAll(fill_fd, &ok, 1);
  close(fill_fd);
  waitpid(fill_pid, nullptr, 0);
  if (!ok) return 1;
  std::printf("  filled %lld rows in %.1f s\n", static_cast<long long>(FLAGS_table_rows),
              std::chrono::duration<double>(Clock::now() - fill_start).count());
  std::fflush(stdout);

  if (sampler) sampler->set_phase("clients");
  // Clients.
  std::vector<std::pair<pid_t, int>> clients;
  for (int c = 0; c < FLAGS_clients; ++c) {
    clients.push_back(Spawn([&endpoints, c](int out) {
      auto sets = MakeKeySets(FLAGS_key_sets, 1000 + c);
      auto client = ConnectOrDie(endpoints);
      if (FLAGS_warmup_seconds > 0) RunPhase(*client, true, sets, FLAGS_warmup_seconds);
      PhaseResult r[2] = {RunPhase(*client, false, sets, FLAGS_seconds),
                          RunPhase(*client, true, sets, FLAGS_seconds)};
      WriteAll(out, r, sizeof(r));
    }));
  }
  PhaseResult total[2];
  for (auto& [pid, fd] : clients) {
    PhaseResult r[2];
    if (!ReadAll(fd, r, sizeof(r))) {
      std::fprintf(stderr, "ps_bench: a client failed\n");
      return 1;
    }
    close(fd);
    waitpid(pid, nullptr, 0);
    for (int p = 0; p < 2; ++p) {
      total[p].keys += r[p].keys;
      total[p].seconds = std::max(total[p].seconds, r[p].seconds);
      total[p].p50_ms = std::max(total[p].p50_ms, r[p].p50_ms);
      total[p].p99_ms = std::max(total[p].p99_ms, r[p].p99_ms);
      total[p].memory_hit_rate += r[p].memory_hit_rate / FLAGS_clients;
    }
  }

  // Server statistics, then shut down.
  std::string stats_line;
  auto [stats_pid, stats_fd] = Spawn([&endpoints](int out) {
    auto client = ConnectOrDie(endpoints);
    auto stats = client->Stats();
    std::string line;
    if (stats.ok()) {
      uint64_t mem = 0, disk = 0, bytes = 0, disk_bytes = 0, live = 0, index = 0, reads = 0,
               read_bytes = 0, written = 0, compacted = 0, compacted_bytes = 0, split = 0,
               alone = 0;
      double split_wait = 0;
      for (const auto& s : *stats) {
        split += s.split_requests();
        split_wait += s.split_wait_seconds();
        alone += s.split_groupings_alone();
        const TableStats& t = s.table(0);
        mem += t.rows_in_memory();
        disk += t.rows_on_disk();
        bytes += s.bytes_in_memory();
        disk_bytes += t.bytes_on_disk();
        live += t.disk_live_bytes();
        index += t.disk_index_bytes();
        reads += t.disk_reads();
        read_bytes += t.disk_read_bytes();
        written += t.disk_written_bytes();
        compacted += t.compacted_segments();
        compacted_bytes += t.compacted_bytes();
      }
      line = absl::StrFormat(
          "rows in memory %d, in the spill logs %d; %.0f MB in memory (%.0f MB of it the logs' "
          "index, %.1f B a row); "
          "logs %.0f MB (%.0f MB live); %d records read back (%.0f MB), %.0f MB appended; "
          "%d segments compacted (%.0f MB read)",
          mem, disk, bytes / 1048576.0, index / 1048576.0,
          disk > 0 ? static_cast<double>(index) / disk : 0.0, disk_bytes / 1048576.0,
          live / 1048576.0, reads, read_bytes / 1048576.0, written / 1048576.0, compacted,
          compacted_bytes / 1048576.0);
      // Fill, pulls and pushes alike.
      absl::StrAppendFormat(
          &line,
          "\n%d requests split between the server threads; their owners waited %.3f ms each "
          "for the other thread's last part; %d groupings done alone after a wait",
          split, split > 0 ? 1e3 * split_wait / split : 0.0, alone);
    }
    (void)client->Shutdown();
    uint32_t n = line.size();
    WriteAll(out, &n, 4);
    WriteAll(out, line.data(), n);
  });
  uint32_t n = 0;
  if (ReadAll(stats_fd, &n, 4)) {
    stats_line.resize(n);
    ReadAll(stats_fd, stats_line.data(), n);
  }
  close(stats_fd);
  waitpid(stats_pid, nullptr, 0);
  for (pid_t p : pids) waitpid(p, nullptr, 0);

  const double bytes_per_key[2] = {8.0 + 4.0 * FLAGS_dim, 8.0 + 4.0 * FLAGS_dim};
  const char* names[2] = {"pull", "push"};
  double rate[2];
  std::printf("\n%-6s %14s %10s %10s %10s %10s\n", "op", "keys/s", "MB/s", "p50 ms", "p99 ms",
              "mem hits");
  for (int p = 0; p < 2; ++p) {
    rate[p] = total[p].keys / total[p].seconds;
    std::printf("%-6s %14.0f %10.1f %10.2f %10.2f %10.3f\n", names[p], rate[p],
                rate[p] * bytes_per_key[p] / 1e6, total[p].p50_ms, total[p].p99_ms,
                total[p].memory_hit_rate);
  }
  std::printf("%s\n", stats_line.c_str());
  if (sampler) {
    std::printf(
        "peak server VmRSS %.0f MB (limit %lld MB: %.2fx); least free disk %.0f MB; samples in "
        "%s\n",
        sampler->peak_rss_mb(), static_cast<long long>(FLAGS_memory_limit_mb),
        FLAGS_memory_limit_mb > 0 ? sampler->peak_rss_mb() / FLAGS_memory_limit_mb : 0.0,
        sampler->min_free_disk_mb(), FLAGS_rss_log.c_str());
  }
  std::printf(
      "{\"servers\": %d, \"clients\": %d, \"keys_per_request\": %d, \"dim\": %d, \"table_rows\": "
      "%lld, "
      "\"distribution\": \"%s\", \"memory_limit_mb\": %lld, \"optimizer\": \"%s\", "
      "\"transport\": \"%s\", \"shared_memory_mb\": %lld, \"ps_buffers\": %s, "
      "\"pull_keys_per_sec\": %.0f, \"push_keys_per_sec\": %.0f}\n",
      FLAGS_servers, FLAGS_clients, FLAGS_keys_per_request, FLAGS_dim,
      static_cast<long long>(FLAGS_table_rows), FLAGS_distribution.c_str(),
      static_cast<long long>(FLAGS_memory_limit_mb), FLAGS_optimizer.c_str(),
      FLAGS_transport.c_str(), static_cast<long long>(FLAGS_shared_memory_mb),
      FLAGS_ps_buffers ? "true" : "false", rate[0], rate[1]);
  return 0;
}

}  // namespace
}  // namespace ctrps

int main(int argc, char** argv) {
  ctrps::ParseFlags(&argc, &argv,
                    "pull/push throughput of the parameter server on loopback.\n"
                    "  ps_bench --servers 1 --clients 1 --keys_per_request 100000 --dim 16 "
                    "--table_rows 10000000");
  if (FLAGS_key_sets < 1) {
    std::fprintf(stderr, "ps_bench: --key_sets must be at least 1, got %d\n", FLAGS_key_sets);
    return 2;
  }
  return ctrps::Main();
}
