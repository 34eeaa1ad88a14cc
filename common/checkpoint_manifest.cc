#include "common/checkpoint_manifest.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/hash.h"
#include "common/status.h"
#include "google/protobuf/text_format.h"

namespace ctrps {
namespace {

std::array<uint32_t, 256> MakeCrcTable() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0x82f63b78u ^ (c >> 1) : c >> 1;
    t[i] = c;
  }
  return t;
}

}  // namespace

uint32_t Crc32c(std::string_view data, uint32_t crc) {
  static const std::array<uint32_t, 256> table = MakeCrcTable();
  crc = ~crc;
  for (unsigned char ch : data) crc = table[(crc ^ ch) & 0xff] ^ (crc >> 8);
  return ~crc;
}

absl::Status WriteFileAtomically(const std::string& path, std::string_view bytes) {
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError(tmp, "cannot create");
  // A failure past this point removes the temporary file; `path` is as it was.
  auto fail = [&](absl::string_view what, int err) {
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    return ErrnoError(tmp, what, err);
  };
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return fail("write failed", errno);
    if (w == 0) return fail("write made no progress", EIO);
    done += static_cast<size_t>(w);
  }
  if (::fsync(fd) != 0) return fail("fsync failed", errno);
  const int rc = ::close(fd);
  fd = -1;
  if (rc != 0) return fail("close failed", errno);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    return fail(absl::StrCat("cannot rename to ", path), err);
  }
  return absl::OkStatus();
}

absl::StatusOr<CheckpointManifest> ReadCheckpointManifest(const std::string& dir) {
  const std::string path = absl::StrCat(dir, "/", kManifestName);
  std::ifstream in(path);
  if (!in)
    return absl::NotFoundError(absl::StrCat(path, ": no manifest (not a complete checkpoint)"));
  std::stringstream text;
  text << in.rdbuf();
  CheckpointManifest manifest;
  if (!google::protobuf::TextFormat::ParseFromString(text.str(), &manifest)) {
    return absl::DataLossError(absl::StrCat(path, ": damaged manifest (does not parse)"));
  }
  return manifest;
}

absl::Status WriteCheckpointManifest(const std::string& dir, const CheckpointManifest& manifest) {
  std::string text;
  google::protobuf::TextFormat::PrintToString(manifest, &text);
  return WriteFileAtomically(absl::StrCat(dir, "/", kManifestName), text);
}

std::vector<std::string> ListCheckpoints(const std::string& root) {
  std::vector<std::pair<uint64_t, std::string>> found;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(root, ec)) {
    const std::string name = entry.path().filename().string();
    uint64_t step = 0;
    if (name.rfind("ckpt-", 0) != 0 || !absl::SimpleAtoi(name.substr(5), &step)) continue;
    if (!std::filesystem::exists(entry.path() / kManifestName)) continue;
    found.emplace_back(step, entry.path().string());
  }
  std::sort(found.rbegin(), found.rend());
  std::vector<std::string> out;
  for (auto& [step, path] : found) out.push_back(path);
  return out;
}

uint64_t ConfigFingerprint(const ExperimentConfig& config) {
  std::string text;
  for (const TableConfig& t : config.table()) {
    TableConfig shape;
    shape.set_name(t.name());
    shape.set_dim(t.dim());
    shape.mutable_optimizer()->set_kind(t.optimizer().kind());
    text += shape.SerializeAsString();
  }
  for (const FeatureConfig& f : config.data().feature()) {
    // Numeric statistics are recomputed from the data at every start; a
    // different worker count may change their last bits.
    FeatureConfig shape = f;
    shape.clear_stats();
    text += shape.SerializeAsString();
  }
  text += config.model().SerializeAsString();
  return HashBytes(text);
}

}  // namespace ctrps
