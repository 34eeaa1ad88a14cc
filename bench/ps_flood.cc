// ps_flood: a hostile client of one parameter server, to measure what it
// costs the server. It sends requests with frames larger than any request
// may be, then pulls whose replies it never reads, then holds the
// connection open while the caller samples the server's memory.
//   ps_flood --endpoint tcp://127.0.0.1:PORT --big_frames 3 --big_frame_mb 1024 --pulls 200
// With --key_file the pulls carry the job's member secret (a job's own
// client that stops reading); without it they are a stranger's.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "common/flags_util.h"
#include "common/proto/wire.pb.h"
#include "common/security.h"
#include "gflags/gflags.h"
#include "zmq.hpp"

DEFINE_string(endpoint, "", "the server's endpoint");
DEFINE_string(key_file, "", "the job's key file (ctr-keygen): send its member secret");
DEFINE_int32(big_frames, 3, "requests with one oversized frame each");
DEFINE_int64(big_frame_mb, 1024, "size of each oversized frame");
DEFINE_int32(pulls, 200, "pulls sent whose replies are never read");
DEFINE_int32(keys, 100000, "keys per pull");
DEFINE_string(table, "emb", "table pulled");
DEFINE_int32(dim, 16, "its dim");
DEFINE_double(hold_seconds, 10, "seconds the connection stays open afterwards");
DEFINE_bool(warm_only, false,
            "send one pull, read its reply and exit (the rows it creates are the table's, not "
            "the flood's)");

int main(int argc, char** argv) {
  ctrps::ParseFlags(&argc, &argv,
                    "a client that sends oversized frames and never reads replies\n"
                    "  ps_flood --endpoint tcp://127.0.0.1:PORT [--key_file F] [--pulls N]");
  if (FLAGS_endpoint.empty()) {
    std::fprintf(stderr, "ps_flood: --endpoint is required\n");
    return 1;
  }
  std::string auth;
  ctrps::JobSecrets keys_of_job;
  if (!FLAGS_key_file.empty()) {
    auto s = ctrps::ReadKeyFile(FLAGS_key_file);
    if (!s.ok()) {
      std::fprintf(stderr, "ps_flood: %s\n", s.status().ToString().c_str());
      return 1;
    }
    auth = s->member_token;
    keys_of_job = *s;
  }
  zmq::context_t ctx(1);
  // With the key file, a job's own client (CURVE keys included) that stops
  // reading; without, a stranger.
  auto socket = [&]() {
    zmq::socket_t s(ctx, zmq::socket_type::dealer);
    if (keys_of_job.has_curve_keys()) {
      s.set(zmq::sockopt::curve_serverkey, keys_of_job.server_public_key);
      s.set(zmq::sockopt::curve_publickey, keys_of_job.client_public_key);
      s.set(zmq::sockopt::curve_secretkey, keys_of_job.client_secret_key);
    }
    return s;
  };
  ctrps::RequestHeader h;
  h.set_op(ctrps::OP_PULL);
  h.set_table(FLAGS_table);
  h.set_dim(FLAGS_dim);
  if (!auth.empty()) h.set_auth(auth);
  if (FLAGS_warm_only) {
    std::vector<uint64_t> keys(FLAGS_keys);
    for (int i = 0; i < FLAGS_keys; ++i) keys[i] = static_cast<uint64_t>(i) * 2654435761u;
    h.set_num_keys(keys.size());
    zmq::socket_t s = socket();
    s.set(zmq::sockopt::linger, 0);
    s.set(zmq::sockopt::rcvtimeo, 30000);
    s.connect(FLAGS_endpoint);
    s.send(zmq::buffer(h.SerializeAsString()), zmq::send_flags::sndmore);
    s.send(zmq::buffer(keys), zmq::send_flags::none);
    zmq::message_t reply;
    if (!s.recv(reply)) {
      std::fprintf(stderr, "ps_flood: no reply to the warm-up pull\n");
      return 1;
    }
    ctrps::ReplyHeader r;
    r.ParseFromArray(reply.data(), static_cast<int>(reply.size()));
    std::printf("ps_flood: warm-up pull: code %d %s\n", r.code(), r.message().c_str());
    return r.code() == 0 ? 0 : 1;
  }
  // Oversized frames, each on a fresh connection (the server drops the
  // connection that announced one). The one buffer is sent without copies.
  const size_t big = static_cast<size_t>(FLAGS_big_frame_mb) << 20;
  std::unique_ptr<char[]> buffer(big > 0 ? new char[big] : nullptr);
  if (big > 0) std::memset(buffer.get(), 1, big);
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < FLAGS_big_frames && big > 0; ++i) {
    zmq::socket_t s = socket();
    s.set(zmq::sockopt::linger, 2000);
    s.connect(FLAGS_endpoint);
    h.set_num_keys(big / 8);
    s.send(zmq::buffer(h.SerializeAsString()), zmq::send_flags::sndmore);
    s.send(zmq::message_t(buffer.get(), big, nullptr, nullptr), zmq::send_flags::none);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  // Pulls whose replies are never read.
  zmq::socket_t s = socket();
  s.set(zmq::sockopt::linger, 0);
  s.set(zmq::sockopt::rcvhwm, 1);  // and this side buffers as little as it can
  s.set(zmq::sockopt::rcvbuf, 4096);
  s.connect(FLAGS_endpoint);
  std::vector<uint64_t> keys(FLAGS_keys);
  for (int i = 0; i < FLAGS_keys; ++i) keys[i] = static_cast<uint64_t>(i) * 2654435761u;
  h.set_num_keys(keys.size());
  for (int i = 0; i < FLAGS_pulls; ++i) {
    s.send(zmq::buffer(h.SerializeAsString()), zmq::send_flags::sndmore);
    s.send(zmq::buffer(keys), zmq::send_flags::none);
  }
  const double sent =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf(
      "ps_flood: %d frames of %lld MB and %d pulls of %d keys sent in %.1f s; holding %g s\n",
      FLAGS_big_frames, static_cast<long long>(FLAGS_big_frame_mb), FLAGS_pulls, FLAGS_keys, sent,
      FLAGS_hold_seconds);
  std::fflush(stdout);
  std::this_thread::sleep_for(std::chrono::duration<double>(FLAGS_hold_seconds));
  return 0;
}
