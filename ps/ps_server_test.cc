#include "ps/ps_server.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "zmq_addon.hpp"

namespace ctrps {
namespace {

PsServerOptions Options() {
  PsServerOptions o;
  TableConfig t;
  t.set_name("emb");
  t.set_dim(4);
  t.mutable_optimizer()->set_kind(SparseOptimizerConfig::SGD);
  t.mutable_optimizer()->set_learning_rate(1.0f);
  t.mutable_init()->set_kind(InitializerConfig::ZEROS);
  o.tables.push_back(t);
  o.threads = 2;
  o.max_request_bytes = 1 << 20;
  return o;
}

zmq::message_t Header(Op op, const std::string& table, uint64_t n, uint32_t dim,
                      bool counts = false) {
  RequestHeader h;
  h.set_op(op);
  h.set_request_id(7);
  h.set_table(table);
  h.set_num_keys(n);
  h.set_dim(dim);
  h.set_has_counts(counts);
  return zmq::message_t(h.SerializeAsString());
}

// A raw DEALER that talks to a running server.
class RawPeer {
 public:
  explicit RawPeer(const std::string& endpoint) : ctx_(1), sock_(ctx_, zmq::socket_type::dealer) {
    sock_.set(zmq::sockopt::linger, 0);
    sock_.set(zmq::sockopt::rcvtimeo, 5000);
    sock_.connect(endpoint);
  }
  // Sends frames, returns the reply header and frames.
  ReplyHeader Call(std::vector<zmq::message_t> frames,
                   std::vector<zmq::message_t>* body = nullptr) {
    for (size_t i = 0; i < frames.size(); ++i) {
      sock_.send(frames[i],
                 i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
    std::vector<zmq::message_t> reply;
    auto got = zmq::recv_multipart(sock_, std::back_inserter(reply));
    EXPECT_TRUE(got.has_value()) << "no reply within 5 s";
    ReplyHeader h;
    if (!reply.empty()) {
      EXPECT_TRUE(h.ParseFromArray(reply[0].data(), reply[0].size()));
    }
    if (body != nullptr) {
      body->clear();
      for (size_t i = 1; i < reply.size(); ++i) body->push_back(std::move(reply[i]));
    }
    return h;
  }

 private:
  zmq::context_t ctx_;
  zmq::socket_t sock_;
};

std::vector<zmq::message_t> Frames(std::initializer_list<std::string> parts) {
  std::vector<zmq::message_t> v;
  for (const auto& p : parts) v.emplace_back(p.data(), p.size());
  return v;
}

template <typename T>
zmq::message_t Raw(const std::vector<T>& v) {
  return zmq::message_t(v.data(), v.size() * sizeof(T));
}

class PsServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<PsServer>(Options());
    ASSERT_TRUE(server_->Start().ok());
    peer_ = std::make_unique<RawPeer>(server_->endpoint());
  }
  // A good pull must still work after every bad request.
  void ExpectServesGoodPull() {
    std::vector<zmq::message_t> f;
    f.push_back(Header(OP_PULL, "emb", 2, 4));
    f.push_back(Raw(std::vector<uint64_t>{1, 2}));
    std::vector<zmq::message_t> body;
    ReplyHeader h = peer_->Call(std::move(f), &body);
    EXPECT_EQ(h.code(), 0) << h.message();
    ASSERT_EQ(body.size(), 1u);
    EXPECT_EQ(body[0].size(), 2 * 4 * sizeof(float));
  }
  void ExpectError(std::vector<zmq::message_t> frames, absl::StatusCode code,
                   const std::string& text) {
    ReplyHeader h = peer_->Call(std::move(frames));
    EXPECT_EQ(h.code(), static_cast<int>(code)) << h.message();
    EXPECT_NE(h.message().find(text), std::string::npos) << "message: " << h.message();
    ExpectServesGoodPull();
  }
  std::unique_ptr<PsServer> server_;
  std::unique_ptr<RawPeer> peer_;
};

TEST_F(PsServerTest, PushThenPullRoundTrips) {
  std::vector<zmq::message_t> f;
  f.push_back(Header(OP_PUSH, "emb", 1, 4));
  f.push_back(Raw(std::vector<uint64_t>{42}));
  f.push_back(Raw(std::vector<float>{1, 2, 3, 4}));
  EXPECT_EQ(peer_->Call(std::move(f)).code(), 0);
  f.clear();
  f.push_back(Header(OP_PULL, "emb", 1, 4));
  f.push_back(Raw(std::vector<uint64_t>{42}));
  std::vector<zmq::message_t> body;
  ASSERT_EQ(peer_->Call(std::move(f), &body).code(), 0);
  std::vector<float> got(4);
  std::memcpy(got.data(), body[0].data(), 16);
  EXPECT_EQ(got, (std::vector<float>{-1, -2, -3, -4}));  // zeros - lr 1 * g
}

// Large requests are served in parts by stripe, by whichever handler
// threads are free. Each peer pushes 20,000 keys, each key twice in different
// blocks, and Adagrad makes the order of a key's two updates matter; peers
// push their own keys at the same time, so several split requests share the
// threads. Rows must equal those of a table that took every push whole, and
// pulled rows land in caller order.
class PsServerSplitTest : public ::testing::TestWithParam<std::tuple<int, int>> {};

TEST_P(PsServerSplitTest, LargeRequestsMatchTheTableServingThemWhole) {
  const auto [threads, num_peers] = GetParam();
  PsServerOptions o = Options();
  o.threads = threads;
  TableConfig& t = o.tables[0];
  t.mutable_optimizer()->set_kind(SparseOptimizerConfig::ADAGRAD);
  t.mutable_optimizer()->set_learning_rate(0.1f);
  t.mutable_init()->set_kind(InitializerConfig::NORMAL);
  t.mutable_init()->set_scale(0.1f);
  PsServer server(o);
  ASSERT_TRUE(server.Start().ok());
  auto whole = SparseTable::Create(t, {});
  ASSERT_TRUE(whole.ok()) << whole.status();

  const int kDistinct = 10000;
  std::vector<std::vector<uint64_t>> keys(num_peers);
  std::vector<std::vector<float>> grads(num_peers);
  for (int p = 0; p < num_peers; ++p) {
    for (int copy = 0; copy < 2; ++copy) {
      for (int i = 0; i < kDistinct; ++i) keys[p].push_back(1000003ull * (i * num_peers + p) + 17);
    }
    grads[p].resize(keys[p].size() * 4);
    for (size_t i = 0; i < grads[p].size(); ++i)
      grads[p][i] = 0.001f * static_cast<float>((i + p) % 977) - 0.3f;
    ASSERT_TRUE((*whole)->Push(keys[p], grads[p].data(), nullptr, 0).ok());
  }
  std::vector<ReplyHeader> replies(num_peers);
  std::vector<std::thread> pushers;
  for (int p = 0; p < num_peers; ++p) {
    pushers.emplace_back([&, p] {
      RawPeer peer(server.endpoint());
      std::vector<zmq::message_t> f;
      f.push_back(Header(OP_PUSH, "emb", keys[p].size(), 4));
      f.push_back(Raw(keys[p]));
      f.push_back(Raw(grads[p]));
      replies[p] = peer.Call(std::move(f));
    });
  }
  for (auto& th : pushers) th.join();
  for (const ReplyHeader& h : replies) ASSERT_EQ(h.code(), 0) << h.message();

  RawPeer peer(server.endpoint());
  uint64_t total_keys = 0;
  for (int p = 0; p < num_peers; ++p) {
    std::vector<uint64_t> reversed(keys[p].rbegin(), keys[p].rend());
    total_keys += reversed.size();
    std::vector<zmq::message_t> f;
    f.push_back(Header(OP_PULL, "emb", reversed.size(), 4));
    f.push_back(Raw(reversed));
    std::vector<zmq::message_t> body;
    ReplyHeader h = peer.Call(std::move(f), &body);
    ASSERT_EQ(h.code(), 0) << h.message();
    ASSERT_EQ(body[0].size(), reversed.size() * 16);
    std::vector<float> expect(reversed.size() * 4);
    ASSERT_TRUE((*whole)->Pull(reversed, expect.data()).ok());
    const float* rows = static_cast<const float*>(body[0].data());
    for (size_t i = 0; i < expect.size(); ++i)
      ASSERT_EQ(rows[i], expect[i]) << "peer " << p << ", value " << i;
  }
  std::vector<zmq::message_t> f;
  f.push_back(Header(OP_STATS, "", 0, 0));
  ReplyHeader h = peer.Call(std::move(f));
  EXPECT_EQ(h.stats().table(0).pushed_keys(), total_keys);
  EXPECT_EQ(h.stats().table(0).pulled_keys(), total_keys);
  EXPECT_EQ(h.stats().table(0).rows_in_memory(), static_cast<uint64_t>(kDistinct) * num_peers);
  // Every push and pull of 20000 keys was split. The owners' waits are in
  // seconds (the whole test takes about one).
  EXPECT_EQ(h.stats().split_requests(), 2u * num_peers);
  EXPECT_LT(h.stats().split_wait_seconds(), 10.0);
}

INSTANTIATE_TEST_SUITE_P(ThreadsAndPeers, PsServerSplitTest,
                         ::testing::Values(std::make_tuple(2, 1), std::make_tuple(2, 3),
                                           std::make_tuple(4, 1), std::make_tuple(4, 3)),
                         [](const auto& info) {
                           return "Threads" + std::to_string(std::get<0>(info.param)) + "Peers" +
                                  std::to_string(std::get<1>(info.param));
                         });

TEST_F(PsServerTest, GarbageHeaderIsRejected) {
  ExpectError(Frames({std::string("\xff\xff\xff\xff garbage", 12)}),
              absl::StatusCode::kInvalidArgument, "is not a RequestHeader");
}

TEST_F(PsServerTest, UnknownOpIsRejected) {
  std::vector<zmq::message_t> f;
  f.push_back(Header(static_cast<Op>(99), "emb", 0, 4));
  ExpectError(std::move(f), absl::StatusCode::kInvalidArgument, "missing or unknown op");
}

TEST_F(PsServerTest, UnknownTableIsRejected) {
  std::vector<zmq::message_t> f;
  f.push_back(Header(OP_PULL, "nope", 1, 4));
  f.push_back(Raw(std::vector<uint64_t>{1}));
  ExpectError(std::move(f), absl::StatusCode::kNotFound, "unknown table \"nope\"");
}

TEST_F(PsServerTest, WrongDimIsRejected) {
  std::vector<zmq::message_t> f;
  f.push_back(Header(OP_PULL, "emb", 1, 8));
  f.push_back(Raw(std::vector<uint64_t>{1}));
  ExpectError(std::move(f), absl::StatusCode::kInvalidArgument,
              "table \"emb\" has dim 4, request says 8");
}

TEST_F(PsServerTest, TruncatedFramesAreRejected) {
  std::vector<zmq::message_t> f;
  f.push_back(Header(OP_PUSH, "emb", 2, 4));
  f.push_back(Raw(std::vector<uint64_t>{1, 2}));
  ExpectError(std::move(f), absl::StatusCode::kInvalidArgument, "push: expected 3 frames, got 2");
}

TEST_F(PsServerTest, KeyCountMismatchIsRejected) {
  std::vector<zmq::message_t> f;
  f.push_back(Header(OP_PULL, "emb", 3, 4));
  f.push_back(Raw(std::vector<uint64_t>{1, 2}));
  ExpectError(std::move(f), absl::StatusCode::kInvalidArgument,
              "num_keys 3 needs a keys frame of 24 bytes, got 16");
}

TEST_F(PsServerTest, GradientSizeMismatchIsRejected) {
  std::vector<zmq::message_t> f;
  f.push_back(Header(OP_PUSH, "emb", 2, 4));
  f.push_back(Raw(std::vector<uint64_t>{1, 2}));
  f.push_back(Raw(std::vector<float>{1, 2, 3}));
  ExpectError(std::move(f), absl::StatusCode::kInvalidArgument, "need 32 gradient bytes, got 12");
}

TEST_F(PsServerTest, CountsSizeMismatchIsRejected) {
  std::vector<zmq::message_t> f;
  f.push_back(Header(OP_PUSH, "emb", 2, 4, /*counts=*/true));
  f.push_back(Raw(std::vector<uint64_t>{1, 2}));
  f.push_back(Raw(std::vector<float>(8, 1.0f)));
  f.push_back(Raw(std::vector<uint32_t>{1}));
  ExpectError(std::move(f), absl::StatusCode::kInvalidArgument, "need 8 count bytes, got 4");
}

TEST_F(PsServerTest, OversizedRequestIsRejected) {
  // Frames each under the 1 MiB limit, together over it.
  const uint64_t n = 50000;
  std::vector<zmq::message_t> f;
  f.push_back(Header(OP_PUSH, "emb", n, 4));
  f.push_back(Raw(std::vector<uint64_t>(n, 1)));
  f.push_back(Raw(std::vector<float>(n * 4, 1.0f)));
  ExpectError(std::move(f), absl::StatusCode::kInvalidArgument,
              "exceeds the server limit of 1048576 bytes");
  // A pull whose reply would be over the limit.
  f.clear();
  f.push_back(Header(OP_PULL, "emb", n * 2, 4));
  f.push_back(Raw(std::vector<uint64_t>(n * 2, 1)));
  ExpectError(std::move(f), absl::StatusCode::kInvalidArgument,
              "over this server's limit of 1048576 bytes");
}

TEST_F(PsServerTest, StatsCountBadRequests) {
  ExpectError(Frames({"junk"}), absl::StatusCode::kInvalidArgument, "RequestHeader");
  std::vector<zmq::message_t> f;
  f.push_back(Header(OP_STATS, "", 0, 0));
  ReplyHeader h = peer_->Call(std::move(f));
  ASSERT_EQ(h.code(), 0);
  EXPECT_EQ(h.stats().bad_requests(), 1u);
  ASSERT_EQ(h.stats().table_size(), 1);
  EXPECT_EQ(h.stats().table(0).name(), "emb");
}

// Requests whose bulk data lives in a shared arena the peer attached.
class PsServerArenaTest : public PsServerTest {
 protected:
  void SetUp() override {
    PsServerTest::SetUp();
    auto arena = SharedArena::Create(1 << 20);
    ASSERT_TRUE(arena.ok()) << arena.status();
    arena_ = std::move(*arena);
    ReplyHeader h = peer_->Call(Attach(arena_->path(), arena_->token(), arena_->size()));
    ASSERT_EQ(h.code(), 0) << h.message();
    id_ = h.shm_id();
  }
  static std::vector<zmq::message_t> Attach(const std::string& path, uint64_t token,
                                            uint64_t bytes) {
    RequestHeader h;
    h.set_op(OP_ATTACH);
    h.set_shm_path(path);
    h.set_shm_token(token);
    h.set_shm_bytes(bytes);
    return Frames({h.SerializeAsString()});
  }
  std::vector<zmq::message_t> InArena(Op op, uint64_t n, uint64_t keys_at, uint64_t values_at,
                                      uint64_t id = 0) {
    RequestHeader h;
    h.set_op(op);
    h.set_table("emb");
    h.set_num_keys(n);
    h.set_dim(4);
    h.set_shm_id(id != 0 ? id : id_);
    h.set_shm_keys_offset(keys_at);
    h.set_shm_values_offset(values_at);
    return Frames({h.SerializeAsString()});
  }
  template <typename T>
  T* At(uint64_t offset) {
    return reinterpret_cast<T*>(arena_->data() + offset);
  }
  std::unique_ptr<SharedArena> arena_;
  uint64_t id_ = 0;
};

TEST_F(PsServerArenaTest, PushThenPullThroughTheArena) {
  const uint64_t keys = *arena_->Allocate(64), values = *arena_->Allocate(64);
  At<uint64_t>(keys)[0] = 42;
  At<uint64_t>(keys)[1] = 43;
  for (int i = 0; i < 8; ++i) At<float>(values)[i] = static_cast<float>(i + 1);
  ASSERT_EQ(peer_->Call(InArena(OP_PUSH, 2, keys, values)).code(), 0);
  std::fill(At<float>(values), At<float>(values) + 8, 0.0f);
  std::vector<zmq::message_t> body;
  ReplyHeader h = peer_->Call(InArena(OP_PULL, 2, keys, values), &body);
  ASSERT_EQ(h.code(), 0) << h.message();
  EXPECT_TRUE(body.empty());  // the rows are in the arena
  for (int i = 0; i < 8; ++i)
    EXPECT_EQ(At<float>(values)[i], -(i + 1.0f)) << i;  // zeros - lr 1 * g
  // The socket path sees the same rows.
  std::vector<zmq::message_t> f;
  f.push_back(Header(OP_PULL, "emb", 1, 4));
  f.push_back(Raw(std::vector<uint64_t>{43}));
  ASSERT_EQ(peer_->Call(std::move(f), &body).code(), 0);
  EXPECT_EQ(static_cast<const float*>(body[0].data())[3], -8.0f);
}

TEST_F(PsServerArenaTest, RangesOutsideTheArenaAreRejected) {
  const uint64_t size = arena_->size();
  ExpectError(InArena(OP_PULL, 2, size - 8, 128), absl::StatusCode::kInvalidArgument,
              "pull: keys at offset");
  ExpectError(InArena(OP_PULL, 2, 128, size - 16), absl::StatusCode::kInvalidArgument,
              "values at offset");
  ExpectError(InArena(OP_PUSH, 2, 0, 128), absl::StatusCode::kInvalidArgument,
              "not inside shared arena");
  ExpectError(InArena(OP_PULL, uint64_t{1} << 62, 128, 256), absl::StatusCode::kInvalidArgument,
              "over this server's limit");
  ExpectError(InArena(OP_PULL, 2, 130, 256), absl::StatusCode::kInvalidArgument,
              "not inside shared arena");
}

TEST_F(PsServerArenaTest, UnknownArenaAndExtraFramesAreRejected) {
  ExpectError(InArena(OP_PULL, 1, 128, 256, /*id=*/id_ + 100), absl::StatusCode::kNotFound,
              "no shared arena");
  auto f = InArena(OP_PULL, 1, 128, 256);
  f.push_back(Raw(std::vector<uint64_t>{1}));
  ExpectError(std::move(f), absl::StatusCode::kInvalidArgument,
              "through a shared arena has 1 frame, got 2");
}

TEST_F(PsServerArenaTest, BadAttachIsRejected) {
  ExpectError(Attach(arena_->path(), arena_->token() ^ 1, arena_->size()),
              absl::StatusCode::kInvalidArgument, "token does not match");
  // Only a live process's descriptor: nothing else could be unmapped when
  // its owner exits.
  ExpectError(Attach("/no/such/arena", 1, 1 << 20), absl::StatusCode::kInvalidArgument,
              "/no/such/arena");
  const std::string closed = absl::StrCat("/proc/", getpid(), "/fd/999999");
  ExpectError(Attach(closed, 1, 1 << 20), absl::StatusCode::kNotFound, closed);
  // A plain file could be truncated under the server's mapping.
  const std::string plain = ::testing::TempDir() + "/plain_arena";
  {
    std::ofstream f(plain);
    f << std::string(1 << 20, 'x');
  }
  ExpectError(Attach(plain, 1, 1 << 20), absl::StatusCode::kInvalidArgument, "/proc/<pid>/fd/<n>");
  FILE* open_plain = std::fopen(plain.c_str(), "r");
  ASSERT_NE(open_plain, nullptr);
  ExpectError(Attach(absl::StrCat("/proc/", getpid(), "/fd/", fileno(open_plain)), 1, 1 << 20),
              absl::StatusCode::kInvalidArgument, "not sealed");
  std::fclose(open_plain);
  std::remove(plain.c_str());
}

TEST_F(PsServerArenaTest, DetachedArenaIsNoLongerUsed) {
  RequestHeader h;
  h.set_op(OP_DETACH);
  h.set_shm_id(id_);
  ASSERT_EQ(peer_->Call(Frames({h.SerializeAsString()})).code(), 0);
  ExpectError(InArena(OP_PULL, 1, 128, 256), absl::StatusCode::kNotFound, "no shared arena");
  ExpectError(Frames({h.SerializeAsString()}), absl::StatusCode::kNotFound,
              "detach: no shared arena");
}

TEST(PsServerArenaLimitTest, ArenaOfAnExitedClientIsUnmappedAndFreesItsPlace) {
  // A client process attaches its arena and exits without detaching. The
  // server allows one arena: the next client's attach must find the place
  // free, and the dead client's arena id must be gone. (The child is forked
  // before this test starts a server and its threads.)
  int to_child[2], from_child[2];
  ASSERT_EQ(pipe(to_child), 0);
  ASSERT_EQ(pipe(from_child), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto arena = SharedArena::Create(1 << 20);
    if (!arena.ok()) _exit(1);
    const std::string info = absl::StrCat((*arena)->path(), " ", (*arena)->token(), "\n");
    if (write(from_child[1], info.data(), info.size()) != static_cast<ssize_t>(info.size()))
      _exit(2);
    char go;
    (void)!read(to_child[0], &go, 1);  // exits without detaching
    _exit(0);
  }
  char buf[256] = {0};
  ssize_t got = 0;
  while (got < static_cast<ssize_t>(sizeof(buf) - 1) && (got == 0 || buf[got - 1] != '\n')) {
    const ssize_t r = read(from_child[0], buf + got, sizeof(buf) - 1 - got);
    ASSERT_GT(r, 0) << "the child did not report its arena";
    got += r;
  }
  char path[200];
  unsigned long long token = 0;
  ASSERT_EQ(sscanf(buf, "%199s %llu", path, &token), 2) << buf;

  PsServerOptions o = Options();
  o.max_arenas = 1;
  PsServer server(o);
  ASSERT_TRUE(server.Start().ok());
  RawPeer peer(server.endpoint());
  auto attach = [](const std::string& p, uint64_t t) {
    RequestHeader h;
    h.set_op(OP_ATTACH);
    h.set_shm_path(p);
    h.set_shm_token(t);
    h.set_shm_bytes(1 << 20);
    return Frames({h.SerializeAsString()});
  };
  ReplyHeader h = peer.Call(attach(path, token));
  ASSERT_EQ(h.code(), 0) << h.message();
  const uint64_t dead_id = h.shm_id();
  auto mine = SharedArena::Create(1 << 20);
  ASSERT_TRUE(mine.ok()) << mine.status();
  // While the first client lives, the one place is taken.
  h = peer.Call(attach((*mine)->path(), (*mine)->token()));
  EXPECT_EQ(h.code(), static_cast<int>(absl::StatusCode::kResourceExhausted)) << h.message();

  ASSERT_EQ(write(to_child[1], "x", 1), 1);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  h = peer.Call(attach((*mine)->path(), (*mine)->token()));
  ASSERT_EQ(h.code(), 0) << h.message();
  RequestHeader pull;
  pull.set_op(OP_PULL);
  pull.set_table("emb");
  pull.set_num_keys(1);
  pull.set_dim(4);
  pull.set_shm_id(dead_id);
  h = peer.Call(Frames({pull.SerializeAsString()}));
  EXPECT_EQ(h.code(), static_cast<int>(absl::StatusCode::kNotFound)) << h.message();
  for (int fd : {to_child[0], to_child[1], from_child[0], from_child[1]}) close(fd);
}

TEST(PsServerHandleTest, ShutdownRequestStopsTheServer) {
  PsServer server(Options());
  ASSERT_TRUE(server.Start().ok());
  RawPeer peer(server.endpoint());
  std::vector<zmq::message_t> f;
  f.push_back(Header(OP_SHUTDOWN, "", 0, 0));
  EXPECT_EQ(peer.Call(std::move(f)).code(), 0);
  server.Wait();  // returns: the server ended its loop
  server.Stop();
}

TEST(PsServerHandleTest, BadTableConfigFailsStart) {
  PsServerOptions o = Options();
  o.tables[0].set_dim(0);
  PsServer server(o);
  EXPECT_EQ(server.Start().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ctrps
