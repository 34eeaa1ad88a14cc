#include "ps/ps_server.h"

#include <cstring>
#include <vector>

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

zmq::message_t Header(Op op, const std::string& table, uint64_t n, uint32_t dim, bool counts = false) {
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
  ReplyHeader Call(std::vector<zmq::message_t> frames, std::vector<zmq::message_t>* body = nullptr) {
    for (size_t i = 0; i < frames.size(); ++i) {
      sock_.send(frames[i], i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
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
  void ExpectError(std::vector<zmq::message_t> frames, absl::StatusCode code, const std::string& text) {
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

TEST_F(PsServerTest, GarbageHeaderIsRejected) {
  ExpectError(Frames({std::string("\xff\xff\xff\xff garbage", 12)}), absl::StatusCode::kInvalidArgument,
              "is not a RequestHeader");
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
  ExpectError(std::move(f), absl::StatusCode::kInvalidArgument, "table \"emb\" has dim 4, request says 8");
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
  ExpectError(std::move(f), absl::StatusCode::kInvalidArgument, "num_keys 3 needs a keys frame of 24 bytes, got 16");
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
  const uint64_t n = (1 << 20) / 8 + 16;  // just over the 1 MiB limit
  std::vector<zmq::message_t> f;
  f.push_back(Header(OP_PULL, "emb", n, 4));
  f.push_back(Raw(std::vector<uint64_t>(n, 1)));
  ExpectError(std::move(f), absl::StatusCode::kInvalidArgument, "exceeds the server limit of 1048576 bytes");
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
