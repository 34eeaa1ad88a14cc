// libFuzzer target: the readers of files a job takes from disk, each fed
// the input as its file: the checkpoint manifest (ReadCheckpointManifest),
// an exported embedding file (EmbeddingFile::Open, then lookups and row
// reads), and the experiment config (ParseExperimentConfig).
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/checkpoint_manifest.h"
#include "common/config.h"
#include "worker/embedding_file.h"

namespace {

const std::string& Dir() {
  static const std::string dir = [] {
    std::string d = "/tmp/ctrps-fuzz-reader." + std::to_string(getpid());
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ctrps;
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  // The first byte picks the reader, so that each keeps its own corpus
  // entries apart.
  const int which = size > 0 ? data[0] % 3 : 0;
  const std::string body = size > 0 ? bytes.substr(1) : bytes;
  if (which == 0) {
    std::ofstream(Dir() + "/" + kManifestName, std::ios::binary | std::ios::trunc) << body;
    auto m = ReadCheckpointManifest(Dir());
    if (m.ok()) (void)ConfigFingerprint(m->config());
  } else if (which == 1) {
    const std::string path = Dir() + "/emb.bin";
    std::ofstream(path, std::ios::binary | std::ios::trunc) << body;
    auto f = EmbeddingFile::Open(path);
    if (f.ok()) {
      std::vector<float> row((*f)->dim());
      for (uint64_t key : {uint64_t{0}, uint64_t{1}, ~uint64_t{0}}) {
        const int64_t r = (*f)->Find(key);
        if (r >= 0) (*f)->ReadRow(static_cast<uint64_t>(r), row.data());
      }
      if ((*f)->rows() > 0) (*f)->ReadRow((*f)->rows() - 1, row.data());
    }
  } else {
    (void)ParseExperimentConfig(body, "fuzz.pbtxt");
  }
  return 0;
}
