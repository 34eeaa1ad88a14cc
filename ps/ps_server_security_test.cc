// Requests an attacker or a broken client can send a job's server: each gets
// an error reply or a refusal, and the server keeps serving.
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/security.h"
#include "gtest/gtest.h"
#include "ps/ps_server.h"
#include "worker/ps_client.h"
#include "zmq_addon.hpp"

namespace ctrps {
namespace {

namespace fs = std::filesystem;

constexpr char kMember[] = "member-secret-member-secret-0001";
constexpr char kChief[] = "chief-secret-chief-secret-000001";

TableConfig Table(const std::string& name, TableConfig::NonFinite non_finite) {
  TableConfig t;
  t.set_name(name);
  t.set_dim(4);
  t.mutable_optimizer()->set_kind(SparseOptimizerConfig::SGD);
  t.mutable_optimizer()->set_learning_rate(1.0f);
  t.mutable_init()->set_kind(InitializerConfig::ZEROS);
  t.set_ttl_steps(100);
  t.set_non_finite_gradients(non_finite);
  return t;
}

class Peer {
 public:
  Peer(const std::string& endpoint, const std::string& auth, int timeout_ms = 5000,
       const JobSecrets* curve = nullptr)
      : ctx_(1), sock_(ctx_, zmq::socket_type::dealer), auth_(auth) {
    sock_.set(zmq::sockopt::linger, 0);
    sock_.set(zmq::sockopt::rcvtimeo, timeout_ms);
    // A connection refused at the handshake has nothing to queue into.
    sock_.set(zmq::sockopt::sndtimeo, timeout_ms);
    if (curve != nullptr) {
      sock_.set(zmq::sockopt::curve_serverkey, curve->server_public_key);
      sock_.set(zmq::sockopt::curve_publickey, curve->client_public_key);
      sock_.set(zmq::sockopt::curve_secretkey, curve->client_secret_key);
    }
    sock_.connect(endpoint);
  }
  RequestHeader Header(Op op, const std::string& table = "emb", uint64_t n = 0) const {
    RequestHeader h;
    h.set_op(op);
    h.set_request_id(1);
    h.set_table(table);
    h.set_num_keys(n);
    h.set_dim(4);
    if (!auth_.empty()) h.set_auth(auth_);
    return h;
  }
  // False when the socket would not take the frames in time.
  bool Send(std::vector<zmq::message_t>& frames) {
    for (size_t i = 0; i < frames.size(); ++i) {
      if (!sock_.send(frames[i],
                      i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none))
        return false;
    }
    return true;
  }
  // The reply's header, or nullopt when none came in time.
  std::optional<ReplyHeader> Call(const RequestHeader& h, std::vector<zmq::message_t> bulk = {},
                                  std::vector<zmq::message_t>* body = nullptr) {
    std::vector<zmq::message_t> frames;
    frames.emplace_back(h.SerializeAsString());
    for (auto& b : bulk) frames.push_back(std::move(b));
    if (!Send(frames)) return std::nullopt;
    std::vector<zmq::message_t> reply;
    if (!zmq::recv_multipart(sock_, std::back_inserter(reply)) || reply.empty()) {
      return std::nullopt;
    }
    ReplyHeader r;
    EXPECT_TRUE(r.ParseFromArray(reply[0].data(), static_cast<int>(reply[0].size())));
    if (body != nullptr) {
      body->clear();
      for (size_t i = 1; i < reply.size(); ++i) body->push_back(std::move(reply[i]));
    }
    return r;
  }

 private:
  zmq::context_t ctx_;
  zmq::socket_t sock_;
  std::string auth_;
};

zmq::message_t Keys(std::vector<uint64_t> keys) {
  return zmq::message_t(keys.data(), keys.size() * sizeof(uint64_t));
}
zmq::message_t Floats(std::vector<float> v) { return zmq::message_t(v.data(), v.size() * 4); }

absl::StatusCode Code(const std::optional<ReplyHeader>& r) {
  return r ? static_cast<absl::StatusCode>(r->code()) : absl::StatusCode::kDeadlineExceeded;
}

class PsServerSecurityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / absl::StrCat("ps_security_test.", getpid());
    fs::remove_all(root_);
    fs::create_directories(root_ / "run");
  }
  void TearDown() override {
    if (server_) server_->Stop();
    server_.reset();
    fs::remove_all(root_);
  }
  PsServerOptions Options() {
    PsServerOptions o;
    o.tables = {Table("emb", TableConfig::REJECT), Table("skip", TableConfig::SKIP_NON_FINITE)};
    o.threads = 2;
    o.max_request_bytes = 1 << 20;
    o.member_token = kMember;
    o.chief_token = kChief;
    o.storage_dir = (root_ / "run" / "ps").string();
    o.checkpoint_roots = {(root_ / "run").string()};
    o.ttl_sweep_interval_ns = 0;  // look for expired rows after every request
    return o;
  }
  void Start(PsServerOptions o) {
    server_ = std::make_unique<PsServer>(std::move(o));
    ASSERT_TRUE(server_->Start().ok());
  }
  // A chief's pull of key 1 works: the server is still serving.
  void ExpectServing() {
    Peer chief(server_->endpoint(), kChief);
    auto r = chief.Call(chief.Header(OP_PULL, "emb", 1), [] {
      std::vector<zmq::message_t> v;
      v.push_back(Keys({1}));
      return v;
    }());
    ASSERT_TRUE(r.has_value()) << "the server stopped answering";
    EXPECT_EQ(r->code(), 0) << r->message();
  }
  uint64_t Rows(const std::string& table) {
    TableStats st = server_->table(table)->Stats();
    return st.rows_in_memory() + st.rows_on_disk();
  }

  fs::path root_;
  std::unique_ptr<PsServer> server_;
};

template <typename... T>
std::vector<zmq::message_t> Bulk(T&&... f) {
  std::vector<zmq::message_t> v;
  (v.push_back(std::forward<T>(f)), ...);
  return v;
}

TEST_F(PsServerSecurityTest, CountsThatOverflowAreRefused) {
  Start(Options());
  Peer p(server_->endpoint(), kMember);
  // 2^61 + 1 keys: 8 * n wraps to 8 bytes.
  const uint64_t wrap = (uint64_t{1} << 61) + 1;
  EXPECT_EQ(Code(p.Call(p.Header(OP_PULL, "emb", wrap), Bulk(Keys({1})))),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Code(p.Call(p.Header(OP_PUSH, "emb", wrap), Bulk(Keys({1}), Floats({1, 2, 3, 4})))),
            absl::StatusCode::kInvalidArgument);
  // n * dim * 4 wraps to 0 with dim 4: n = 2^62.
  EXPECT_EQ(Code(p.Call(p.Header(OP_PULL, "emb", uint64_t{1} << 62), Bulk(zmq::message_t()))),
            absl::StatusCode::kInvalidArgument);
  // A reply over the request limit: 100k keys of dim 4 is 1.6 MB > 1 MB.
  std::vector<uint64_t> many(100000, 5);
  EXPECT_EQ(Code(p.Call(p.Header(OP_PULL, "emb", many.size()), Bulk(Keys(many)))),
            absl::StatusCode::kInvalidArgument);
  // Shared-arena offsets near 2^64 on an arena that is not there.
  RequestHeader shm = p.Header(OP_PULL, "emb", wrap);
  shm.set_shm_id(12345);
  shm.set_shm_keys_offset(~uint64_t{0} - 7);
  EXPECT_NE(Code(p.Call(shm)), absl::StatusCode::kOk);
  // A header that is not a header.
  std::vector<zmq::message_t> junk;
  junk.emplace_back(std::string("\xff\xff\xff\xff\xff\xff", 6));
  (void)p.Send(junk);
  ExpectServing();
  EXPECT_EQ(Rows("emb"), 0u);
}

TEST_F(PsServerSecurityTest, RequestsWithoutTheJobSecretAreRefused) {
  Start(Options());
  for (const std::string& auth :
       {std::string(), std::string("guess"), std::string(kMember) + "x"}) {
    Peer p(server_->endpoint(), auth);
    for (Op op : {OP_PULL, OP_PUSH, OP_STATS, OP_PING, OP_SHUTDOWN, OP_SAVE, OP_LOAD, OP_ATTACH,
                  OP_DETACH}) {
      RequestHeader h = p.Header(op, "emb", 1);
      h.set_path((root_ / "run" / "ckpt").string());
      auto r = op == OP_PULL   ? p.Call(h, Bulk(Keys({1})))
               : op == OP_PUSH ? p.Call(h, Bulk(Keys({1}), Floats({1, 1, 1, 1})))
                               : p.Call(h);
      EXPECT_EQ(Code(r), absl::StatusCode::kPermissionDenied) << Op_Name(op);
      EXPECT_FALSE(r && r->has_stats()) << "stats leaked";
    }
  }
  EXPECT_EQ(Rows("emb"), 0u);
  EXPECT_FALSE(fs::exists(root_ / "run" / "ckpt"));
  ExpectServing();
}

TEST_F(PsServerSecurityTest, ControlOpsAreTheChiefsAlone) {
  Start(Options());
  Peer member(server_->endpoint(), kMember);
  for (Op op : {OP_SHUTDOWN, OP_SAVE, OP_LOAD}) {
    RequestHeader h = member.Header(op);
    h.set_path((root_ / "run" / "ckpt").string());
    EXPECT_EQ(Code(member.Call(h)), absl::StatusCode::kPermissionDenied) << Op_Name(op);
  }
  // Arena ids cannot be guessed: detaching 1..100 finds none.
  for (uint64_t id = 1; id <= 100; ++id) {
    RequestHeader h = member.Header(OP_DETACH);
    h.set_shm_id(id);
    EXPECT_EQ(Code(member.Call(h)), absl::StatusCode::kNotFound);
  }
  // Members may still pull and push.
  EXPECT_EQ(
      Code(member.Call(member.Header(OP_PUSH, "emb", 1), Bulk(Keys({3}), Floats({1, 1, 1, 1})))),
      absl::StatusCode::kOk);
  ExpectServing();
}

TEST_F(PsServerSecurityTest, SaveAndLoadStayInsideTheJobsDirectories) {
  Start(Options());
  Peer chief(server_->endpoint(), kChief);
  const fs::path outside = root_ / "elsewhere";
  fs::create_directories(outside);
  fs::create_directory_symlink(outside, root_ / "run" / "link");
  for (const fs::path& bad :
       {outside / "ckpt", root_ / "run" / ".." / "elsewhere" / "ckpt",
        root_ / "run" / "link" / "ckpt", fs::path("/tmp/ctrps-ckpt-outside"), root_ / "run"}) {
    for (Op op : {OP_SAVE, OP_LOAD}) {
      RequestHeader h = chief.Header(op);
      h.set_path(bad.string());
      EXPECT_EQ(Code(chief.Call(h)), absl::StatusCode::kPermissionDenied)
          << Op_Name(op) << " " << bad;
    }
  }
  EXPECT_TRUE(fs::is_empty(outside));
  RequestHeader h = chief.Header(OP_SAVE);
  h.set_path((root_ / "run" / "checkpoints" / "ckpt-1" / "server-0").string());
  auto r = chief.Call(h);
  EXPECT_EQ(Code(r), absl::StatusCode::kOk) << (r ? r->message() : "");
  ExpectServing();
}

TEST_F(PsServerSecurityTest, TheStepOfAMembersRequestDoesNotEvictRows) {
  Start(Options());
  Peer chief(server_->endpoint(), kChief);
  Peer member(server_->endpoint(), kMember);
  RequestHeader push = chief.Header(OP_PUSH, "emb", 2);
  push.set_global_step(10);
  ASSERT_EQ(Code(chief.Call(push, Bulk(Keys({1, 2}), Floats({1, 1, 1, 1, 1, 1, 1, 1})))),
            absl::StatusCode::kOk);
  ASSERT_EQ(Rows("emb"), 2u);
  RequestHeader pull = member.Header(OP_PULL, "emb", 1);
  pull.set_global_step(std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(Code(member.Call(pull, Bulk(Keys({7})))), absl::StatusCode::kOk);
  EXPECT_EQ(Code(member.Call(pull, Bulk(Keys({7})))), absl::StatusCode::kOk);
  EXPECT_EQ(Rows("emb"), 2u) << "a member's step evicted rows";
  // The chief's step does move the job: rows 100 steps old go.
  RequestHeader later = chief.Header(OP_PULL, "emb", 1);
  later.set_global_step(200);
  EXPECT_EQ(Code(chief.Call(later, Bulk(Keys({7})))), absl::StatusCode::kOk);
  EXPECT_EQ(Code(chief.Call(later, Bulk(Keys({7})))), absl::StatusCode::kOk);
  EXPECT_EQ(Rows("emb"), 0u);
}

TEST_F(PsServerSecurityTest, NonFiniteGradientsAreNeverApplied) {
  Start(Options());
  Peer p(server_->endpoint(), kMember);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  // REJECT: nothing applied, the message names the table and the key.
  auto r =
      p.Call(p.Header(OP_PUSH, "emb", 2), Bulk(Keys({11, 12}), Floats({1, 1, 1, 1, 1, nan, 1, 1})));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->code(), static_cast<int>(absl::StatusCode::kInvalidArgument));
  EXPECT_NE(r->message().find("\"emb\""), std::string::npos) << r->message();
  EXPECT_NE(r->message().find("key 12"), std::string::npos) << r->message();
  EXPECT_EQ(Rows("emb"), 0u);
  // SKIP_NON_FINITE: the finite rows are applied, the others counted.
  r = p.Call(p.Header(OP_PUSH, "skip", 3),
             Bulk(Keys({21, 22, 23}), Floats({1, 1, 1, 1, inf, 0, 0, 0, 2, 2, 2, 2})));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->code(), 0) << r->message();
  std::vector<zmq::message_t> body;
  r = p.Call(p.Header(OP_PULL, "skip", 3), Bulk(Keys({21, 22, 23})), &body);
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(body.size(), 1u);
  const float* rows = static_cast<const float*>(body[0].data());
  EXPECT_FLOAT_EQ(rows[0], -1.0f);  // SGD, learning rate 1, from zeros
  EXPECT_FLOAT_EQ(rows[4], 0.0f);   // skipped
  EXPECT_FLOAT_EQ(rows[8], -2.0f);
  for (int i = 0; i < 12; ++i) EXPECT_TRUE(std::isfinite(rows[i]));
  ServerStats stats = server_->Stats();
  uint64_t skipped = 0;
  for (const TableStats& t : stats.table())
    if (t.name() == "skip") skipped = t.non_finite_rows_skipped();
  EXPECT_EQ(skipped, 1u);
}

TEST_F(PsServerSecurityTest, ArenasMustBeAProcessesMemfd) {
  Start(Options());
  Peer p(server_->endpoint(), kMember);
  for (const std::string& path : {std::string("/etc/passwd"), std::string("/proc/self/fd/0"),
                                  absl::StrCat("/proc/", getpid(), "/fd/0/../0"),
                                  absl::StrCat("/proc/", getpid(), "/fd/0")}) {
    RequestHeader h = p.Header(OP_ATTACH);
    h.set_shm_path(path);
    h.set_shm_bytes(1 << 20);
    EXPECT_NE(Code(p.Call(h)), absl::StatusCode::kOk) << path;
  }
  ExpectServing();
}

TEST_F(PsServerSecurityTest, OversizedFramesAndUnreadRepliesDoNotStopTheServer) {
  Start(Options());
  {
    // A frame over the limit: ZeroMQ drops the connection before buffering it.
    Peer p(server_->endpoint(), kMember, 500);
    RequestHeader h = p.Header(OP_PUSH, "emb", 1);
    EXPECT_FALSE(p.Call(h, Bulk(zmq::message_t(size_t{4} << 20))).has_value());
  }
  {
    // A client that sends pulls and never reads the replies.
    Peer p(server_->endpoint(), kMember);
    std::vector<uint64_t> keys(10000, 9);
    for (int i = 0; i < 1000; ++i) {
      std::vector<zmq::message_t> f;
      f.emplace_back(p.Header(OP_PULL, "emb", keys.size()).SerializeAsString());
      f.push_back(Keys(keys));
      (void)p.Send(f);
    }
    ExpectServing();
  }
  ExpectServing();
}

TEST_F(PsServerSecurityTest, CurveRefusesClientsWithoutTheKey) {
  ASSERT_TRUE(CurveAvailable()) << "Debian's libzmq has CURVE; this one lacks it";
  auto secrets = NewJobSecrets();
  ASSERT_TRUE(secrets.ok());
  PsServerOptions o = Options();
  o.curve_server_secret_key = secrets->server_secret_key;
  o.curve_client_public_key = secrets->client_public_key;
  Start(o);
  // Plain ZeroMQ, even with the job's token: nothing comes back.
  Peer plain(server_->endpoint(), kChief, 500);
  EXPECT_FALSE(plain.Call(plain.Header(OP_PING)).has_value());
  EXPECT_FALSE(plain.Call(plain.Header(OP_SHUTDOWN)).has_value());
  // CURVE with the server's public key but a key pair of its own.
  auto other = NewJobSecrets();
  ASSERT_TRUE(other.ok());
  JobSecrets wrong = *other;
  wrong.server_public_key = secrets->server_public_key;
  Peer stranger(server_->endpoint(), kChief, 500, &wrong);
  EXPECT_FALSE(stranger.Call(stranger.Header(OP_PING)).has_value());
  EXPECT_FALSE(stranger.Call(stranger.Header(OP_SHUTDOWN)).has_value());
  // The job's client key pair gets in.
  Peer member(server_->endpoint(), kMember, 5000, &*secrets);
  EXPECT_EQ(Code(member.Call(member.Header(OP_PING))), absl::StatusCode::kOk);
}

TEST_F(PsServerSecurityTest, AJobClientWithoutTheKeyFailsWithinItsDeadline) {
  auto secrets = NewJobSecrets();
  auto other = NewJobSecrets();
  ASSERT_TRUE(secrets.ok() && other.ok());
  PsServerOptions o = Options();
  o.curve_server_secret_key = secrets->server_secret_key;
  o.curve_client_public_key = secrets->client_public_key;
  Start(o);
  PsClientOptions co;
  co.endpoints = {server_->endpoint()};
  co.connect_timeout = absl::Seconds(2);
  co.shared_memory_bytes = 0;
  co.auth_token = kChief;
  co.curve_server_public_key = secrets->server_public_key;
  co.curve_public_key = other->client_public_key;
  co.curve_secret_key = other->client_secret_key;
  const absl::Time start = absl::Now();
  auto refused = PsClient::Connect(co);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable) << refused.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  co.curve_public_key = secrets->client_public_key;
  co.curve_secret_key = secrets->client_secret_key;
  auto client = PsClient::Connect(co);
  ASSERT_TRUE(client.ok()) << client.status();
  const uint64_t key = 5;
  std::vector<float> row(4);
  EXPECT_TRUE((*client)->Pull("emb", {&key, 1}, 4, row.data()).Wait().ok());
  EXPECT_GE(server_->Stats().refused_handshakes(), 1u);
}

TEST_F(PsServerSecurityTest, AStepTaggedPullWithoutTheSecretIsRefusedNotHeld) {
  PsServerOptions o = Options();
  o.step_sync.mode = TrainConfig::SYNC;
  o.step_sync.num_workers = 2;
  o.step_sync.timeout = absl::Seconds(30);
  Start(std::move(o));
  // A pull that would wait for a step far ahead: held, it would expire the
  // step tracking and fail the job's pulls; without the secret it is refused
  // at once.
  Peer stranger(server_->endpoint(), "", /*timeout_ms=*/3000);
  RequestHeader h = stranger.Header(OP_PULL, "emb", 1);
  h.set_global_step(1000);
  h.set_sync_worker(0);
  h.set_sync_first_step(0);
  h.set_sync_wait_step(999);
  EXPECT_EQ(Code(stranger.Call(h, Bulk(Keys({1})))), absl::StatusCode::kPermissionDenied);
}

}  // namespace
}  // namespace ctrps
