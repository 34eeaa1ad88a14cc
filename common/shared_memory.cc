#include "common/shared_memory.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status.h"

namespace ctrps {
namespace {

constexpr char kMagic[16] = "ctrps-arena-v1";
constexpr size_t kTokenOffset = sizeof(kMagic);
constexpr uint64_t kAlign = 64;

}  // namespace

absl::StatusOr<std::unique_ptr<SharedArena>> SharedArena::Create(size_t bytes) {
  bytes = (bytes + 4095) & ~size_t{4095};
  if (bytes <= kSharedArenaHeaderBytes)
    return absl::InvalidArgumentError("shared arena: too small");
  const int fd = memfd_create("ctrps-arena", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return ErrnoError("shared arena", "memfd_create");
  // Sealed at its size: the server maps it, and a file that shrank under a
  // mapping would fault the server on its next access.
  if (ftruncate(fd, static_cast<off_t>(bytes)) != 0 ||
      fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    const int err = errno;
    close(fd);
    return ErrnoError("shared arena", absl::StrCat("sizing and sealing ", bytes, " bytes"), err);
  }
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    const int err = errno;
    close(fd);
    return ErrnoError("shared arena", absl::StrCat("mmap of ", bytes, " bytes"), err);
  }
  std::random_device rd;
  const uint64_t token = (uint64_t{rd()} << 32) ^ rd();
  auto* base = static_cast<std::byte*>(p);
  std::memcpy(base, kMagic, sizeof(kMagic));
  std::memcpy(base + kTokenOffset, &token, sizeof(token));
  return std::unique_ptr<SharedArena>(new SharedArena(fd, base, bytes, token));
}

SharedArena::SharedArena(int fd, std::byte* base, size_t size, uint64_t token)
    : fd_(fd),
      base_(base),
      size_(size),
      token_(token),
      path_(absl::StrCat("/proc/", getpid(), "/fd/", fd)) {
  free_[kSharedArenaHeaderBytes] = size - kSharedArenaHeaderBytes;
}

SharedArena::~SharedArena() {
  munmap(base_, size_);
  close(fd_);
}

std::optional<uint64_t> SharedArena::Allocate(size_t bytes) {
  const uint64_t need = std::max<uint64_t>(kAlign, (bytes + kAlign - 1) & ~(kAlign - 1));
  absl::MutexLock lock(&mu_);
  for (auto it = free_.begin(); it != free_.end(); ++it) {
    if (it->second < need) continue;
    const uint64_t offset = it->first, left = it->second - need;
    free_.erase(it);
    if (left > 0) free_[offset + need] = left;
    used_[offset] = need;
    return offset;
  }
  return std::nullopt;
}

void SharedArena::Free(uint64_t offset) {
  absl::MutexLock lock(&mu_);
  auto used = used_.find(offset);
  if (used == used_.end()) return;
  uint64_t start = offset, bytes = used->second;
  used_.erase(used);
  auto next = free_.lower_bound(start);
  if (next != free_.end() && next->first == start + bytes) {
    bytes += next->second;
    next = free_.erase(next);
  }
  if (next != free_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second == start) {
      start = prev->first;
      bytes += prev->second;
      free_.erase(prev);
    }
  }
  free_[start] = bytes;
}

size_t SharedArena::bytes_free() const {
  absl::MutexLock lock(&mu_);
  size_t total = 0;
  for (const auto& [offset, bytes] : free_) total += bytes;
  return total;
}

absl::StatusOr<std::unique_ptr<SharedMapping>> SharedMapping::Open(const std::string& path,
                                                                   uint64_t token, uint64_t bytes) {
  // Non-blocking and never a controlling terminal: the path comes from a
  // request and may name any file.
  const int fd = open(path.c_str(), O_RDWR | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) return ErrnoError("shared arena " + path, "cannot open");
  struct stat st;
  const int seals = fcntl(fd, F_GET_SEALS);
  absl::Status status;
  if (fstat(fd, &st) != 0) {
    status = ErrnoError("shared arena " + path, "cannot stat");
  } else if (!S_ISREG(st.st_mode) || seals < 0 || !(seals & F_SEAL_SHRINK)) {
    status = absl::InvalidArgumentError(
        absl::StrCat("shared arena ", path, " is not sealed against shrinking"));
  } else if (static_cast<uint64_t>(st.st_size) != bytes || bytes <= kSharedArenaHeaderBytes) {
    status = absl::InvalidArgumentError(absl::StrFormat(
        "shared arena %s has %d bytes, the request says %d", path, st.st_size, bytes));
  }
  if (!status.ok()) {
    close(fd);
    return status;
  }
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  const int err = errno;
  close(fd);  // the mapping keeps the file
  if (p == MAP_FAILED) return ErrnoError("shared arena " + path, "mmap", err);
  std::unique_ptr<SharedMapping> mapping(new SharedMapping(static_cast<std::byte*>(p), bytes));
  uint64_t found = 0;
  std::memcpy(&found, mapping->base_ + kTokenOffset, sizeof(found));
  if (std::memcmp(mapping->base_, kMagic, sizeof(kMagic)) != 0 || found != token) {
    return absl::InvalidArgumentError(
        absl::StrCat("shared arena ", path, ": magic or token does not match"));
  }
  return mapping;
}

SharedMapping::~SharedMapping() { munmap(base_, size_); }

std::byte* SharedMapping::Range(uint64_t offset, uint64_t bytes, size_t alignment) const {
  if (offset < kSharedArenaHeaderBytes || offset > size_ || bytes > size_ - offset) return nullptr;
  if (offset % alignment != 0) return nullptr;
  return base_ + offset;
}

}  // namespace ctrps
