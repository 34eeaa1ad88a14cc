// libFuzzer target: a job's server decoding and serving one request, in
// process (PsServer::Handle), with the secrets, checkpoint roots and
// limits a launched job's server has. Tables: SGD dim 4, Adam dim 3 that
// skips non-finite gradients, Adagrad dim 16 with admission and a TTL.
// Seeds: fuzz/make_request_seeds writes a valid request of every op.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>

#include "fuzz/fuzz_frames.h"
#include "glog/logging.h"
#include "ps/ps_server.h"

namespace ctrps {
namespace {

PsServer* Server() {
  static PsServer* server = [] {
    namespace fs = std::filesystem;
    fs::remove_all(kFuzzRoot);
    fs::create_directories(fs::path(kFuzzRoot) / "run");
    PsServerOptions o;
    o.threads = 2;
    o.max_request_bytes = 1 << 20;
    o.member_token = kFuzzMember;
    o.chief_token = kFuzzChief;
    o.storage_dir = std::string(kFuzzRoot) + "/storage";
    o.checkpoint_roots = {std::string(kFuzzRoot) + "/run"};
    o.ttl_sweep_interval_ns = 0;
    TableConfig a;
    a.set_name("a");
    a.set_dim(4);
    a.mutable_optimizer()->set_kind(SparseOptimizerConfig::SGD);
    TableConfig b;
    b.set_name("b");
    b.set_dim(3);
    b.mutable_optimizer()->set_kind(SparseOptimizerConfig::ADAM);
    b.set_non_finite_gradients(TableConfig::SKIP_NON_FINITE);
    TableConfig c;
    c.set_name("c");
    c.set_dim(16);
    c.mutable_optimizer()->set_kind(SparseOptimizerConfig::ADAGRAD);
    c.set_min_count(2);
    c.set_ttl_steps(5);
    o.tables = {a, b, c};
    auto* s = new PsServer(o);
    CHECK(s->CreateTables().ok());
    return s;
  }();
  return server;
}

}  // namespace
}  // namespace ctrps

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  FLAGS_minloglevel = 3;  // bad requests are the point; do not log each
  ctrps::Server();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ctrps;
  std::vector<zmq::message_t> request, reply;
  for (const std::string& f : SplitFrames(data, size)) request.emplace_back(f.data(), f.size());
  bool shutdown = false;
  Server()->Handle(request, &reply, &shutdown, "fuzzer");
  // Every request gets a reply that starts with a header.
  ReplyHeader h;
  if (reply.empty() || !h.ParseFromArray(reply[0].data(), static_cast<int>(reply[0].size()))) {
    __builtin_trap();
  }
  // Checkpoints the inputs made are not kept.
  namespace fs = std::filesystem;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(std::string(kFuzzRoot) + "/run", ec)) {
    fs::remove_all(e.path(), ec);
  }
  return 0;
}
