// The server's shared-grouping fallback (PsServer::GroupShare), reached on
// purpose: sync points stall the first thread that claims a block of a split
// request until the other thread has given up waiting for it and grouped
// the whole request alone. Built against a copy of the server library
// compiled with CTRPS_SYNC_POINTS (tests/CMakeLists.txt).
#include <cstring>
#include <memory>
#include <vector>

#include "absl/synchronization/notification.h"
#include "common/sync_point.h"
#include "gtest/gtest.h"
#include "ps/ps_server.h"
#include "ps/sparse_table.h"
#include "zmq_addon.hpp"

namespace ctrps {
namespace {

TableConfig Table() {
  TableConfig t;
  t.set_name("emb");
  t.set_dim(4);
  t.mutable_optimizer()->set_kind(SparseOptimizerConfig::SGD);
  t.mutable_optimizer()->set_learning_rate(1.0f);
  t.mutable_init()->set_kind(InitializerConfig::ZEROS);
  return t;
}

// One request, one reply, over a DEALER.
ReplyHeader Call(zmq::socket_t& sock, RequestHeader header, std::vector<zmq::message_t> body,
                 std::vector<zmq::message_t>* reply_body) {
  zmq::message_t h(header.SerializeAsString());
  sock.send(h, body.empty() ? zmq::send_flags::none : zmq::send_flags::sndmore);
  for (size_t i = 0; i < body.size(); ++i) {
    sock.send(body[i], i + 1 < body.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
  }
  std::vector<zmq::message_t> reply;
  EXPECT_TRUE(zmq::recv_multipart(sock, std::back_inserter(reply)).has_value()) << "no reply";
  ReplyHeader r;
  if (!reply.empty()) {
    EXPECT_TRUE(r.ParseFromArray(reply[0].data(), reply[0].size()));
  }
  if (reply_body != nullptr) {
    reply_body->clear();
    for (size_t i = 1; i < reply.size(); ++i) reply_body->push_back(std::move(reply[i]));
  }
  return r;
}

template <typename T>
zmq::message_t Raw(const std::vector<T>& v) {
  return zmq::message_t(v.data(), v.size() * sizeof(T));
}

TEST(PsServerSyncPointTest, StalledBlockMakesTheOtherThreadGroupTheRequestAlone) {
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

  PsServerOptions options;
  options.tables.push_back(Table());
  options.threads = 2;
  PsServer server(options);
  ASSERT_TRUE(server.Start().ok());
  zmq::context_t ctx(1);
  zmq::socket_t sock(ctx, zmq::socket_type::dealer);
  sock.set(zmq::sockopt::linger, 0);
  sock.set(zmq::sockopt::rcvtimeo, 20000);
  sock.connect(server.endpoint());

  // 20,000 distinct keys: split, in 10 blocks of 2048.
  constexpr int kKeys = 20000;
  std::vector<uint64_t> keys(kKeys);
  std::vector<float> grads(kKeys * 4);
  for (int i = 0; i < kKeys; ++i) keys[i] = 1000003ull * i + 17;
  for (size_t i = 0; i < grads.size(); ++i) grads[i] = 0.001f * static_cast<float>(i % 977);
  RequestHeader push;
  push.set_op(OP_PUSH);
  push.set_table("emb");
  push.set_num_keys(kKeys);
  push.set_dim(4);
  std::vector<zmq::message_t> body;
  body.push_back(Raw(keys));
  body.push_back(Raw(grads));
  sp->EnableProcessing();
  ReplyHeader pushed = Call(sock, push, std::move(body), nullptr);
  sp->DisableProcessing();
  ASSERT_EQ(pushed.code(), 0) << pushed.message();
  EXPECT_TRUE(sp->Passed("PsServer::GroupShare:Alone"));
  EXPECT_EQ(sp->timeouts(), 0);
  sp->ClearAll();

  RequestHeader stats;
  stats.set_op(OP_STATS);
  ReplyHeader s = Call(sock, stats, {}, nullptr);
  EXPECT_EQ(s.stats().split_requests(), 1u);
  EXPECT_EQ(s.stats().split_groupings_alone(), 1u);

  // Grouped alone or shared, every key got its update once: rows = -grad.
  RequestHeader pull;
  pull.set_op(OP_PULL);
  pull.set_table("emb");
  pull.set_num_keys(kKeys);
  pull.set_dim(4);
  std::vector<zmq::message_t> pull_body;
  pull_body.push_back(Raw(keys));
  std::vector<zmq::message_t> rows;
  ASSERT_EQ(Call(sock, pull, std::move(pull_body), &rows).code(), 0);
  ASSERT_EQ(rows.size(), 1u);
  ASSERT_EQ(rows[0].size(), grads.size() * sizeof(float));
  const float* got = static_cast<const float*>(rows[0].data());
  for (size_t i = 0; i < grads.size(); ++i) ASSERT_EQ(got[i], -grads[i]) << "value " << i;
}

}  // namespace
}  // namespace ctrps
