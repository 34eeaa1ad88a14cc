// Writes the request fuzzer's seed corpus: a valid request of every op.
//   make_request_seeds DIR
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/proto/wire.pb.h"
#include "fuzz/fuzz_frames.h"

namespace {

std::string Bytes(const void* p, size_t n) { return std::string(static_cast<const char*>(p), n); }

}  // namespace

int main(int argc, char** argv) {
  using namespace ctrps;
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_request_seeds DIR\n");
    return 1;
  }
  std::filesystem::create_directories(argv[1]);
  int written = 0;
  auto write = [&](const std::string& name, const RequestHeader& h,
                   std::vector<std::string> bulk = {}) {
    std::vector<std::string> frames = {h.SerializeAsString()};
    for (auto& b : bulk) frames.push_back(std::move(b));
    std::ofstream(std::string(argv[1]) + "/" + name, std::ios::binary) << JoinFrames(frames);
    ++written;
  };
  auto header = [](Op op, const char* auth = kFuzzMember) {
    RequestHeader h;
    h.set_op(op);
    h.set_request_id(1);
    h.set_auth(auth);
    return h;
  };
  const uint64_t keys[] = {1, 2, 3, 1ull << 63};
  const float grads[4 * 16] = {0.5f, -0.25f, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14};
  const uint32_t counts[] = {1, 2, 3, 4};
  for (const char* table : {"a", "b", "c"}) {
    const uint32_t dim = table[0] == 'a' ? 4 : table[0] == 'b' ? 3 : 16;
    RequestHeader pull = header(OP_PULL);
    pull.set_table(table);
    pull.set_num_keys(4);
    pull.set_dim(dim);
    pull.set_global_step(3);
    write(std::string("pull_") + table, pull, {Bytes(keys, sizeof(keys))});
    RequestHeader push = pull;
    push.set_op(OP_PUSH);
    write(std::string("push_") + table, push, {Bytes(keys, sizeof(keys)), Bytes(grads, 16 * dim)});
    push.set_has_counts(true);
    push.set_learning_rate_scale(0.5f);
    push.set_batch_fraction(0.25f);
    push.set_auth(kFuzzChief);
    write(std::string("push_counts_") + table, push,
          {Bytes(keys, sizeof(keys)), Bytes(grads, 16 * dim), Bytes(counts, sizeof(counts))});
  }
  write("ping", header(OP_PING));
  write("stats", header(OP_STATS));
  write("shutdown", header(OP_SHUTDOWN, kFuzzChief));
  RequestHeader save = header(OP_SAVE, kFuzzChief);
  save.set_path(std::string(kFuzzRoot) + "/run/ckpt/server-0");
  write("save", save);
  RequestHeader load = header(OP_LOAD, kFuzzChief);
  load.set_path(std::string(kFuzzRoot) + "/run/ckpt");
  write("load", load);
  RequestHeader attach = header(OP_ATTACH);
  attach.set_shm_path("/proc/1/fd/3");
  attach.set_shm_token(42);
  attach.set_shm_bytes(1 << 20);
  write("attach", attach);
  RequestHeader detach = header(OP_DETACH);
  detach.set_shm_id(7);
  write("detach", detach);
  RequestHeader shm = header(OP_PULL);
  shm.set_table("a");
  shm.set_num_keys(4);
  shm.set_dim(4);
  shm.set_shm_id(7);
  shm.set_shm_keys_offset(64);
  shm.set_shm_values_offset(128);
  write("pull_shm", shm);
  std::printf("make_request_seeds: %d seeds in %s\n", written, argv[1]);
  return 0;
}
