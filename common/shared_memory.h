// Shared memory for the bulk data of requests between a client and a server
// on the same host: keys, gradients and pulled rows go through an arena the
// client owns and the server maps, instead of being copied through sockets
// twice by the kernel. Headers still travel over ZeroMQ.
//
// The client creates a SharedArena (a sealed memfd, so it cannot shrink
// under the server and fault it), writes a random token at its start and
// tells the server the file's /proc path. The server opens it as a
// SharedMapping, which checks the seals, the size and the token: a server on
// another host, or a path that now names some other process's file, fails
// the check and the client goes on with sockets.
//
// Thread safety: SharedArena's Allocate/Free may be called from any thread;
// SharedMapping is immutable after Open.
#ifndef CTRPS_COMMON_SHARED_MEMORY_H_
#define CTRPS_COMMON_SHARED_MEMORY_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace ctrps {

// Bytes at the start of an arena holding its magic and token; allocations
// start after them.
inline constexpr size_t kSharedArenaHeaderBytes = 64;

class SharedArena {
 public:
  // When the kernel refuses the memfd or the mapping, the code of its errno
  // (ErrnoError): ResourceExhausted when memory or a limit is out.
  static absl::StatusOr<std::unique_ptr<SharedArena>> Create(size_t bytes);
  ~SharedArena();
  SharedArena(const SharedArena&) = delete;
  SharedArena& operator=(const SharedArena&) = delete;

  // Where another process of this host opens the arena.
  const std::string& path() const { return path_; }
  uint64_t token() const { return token_; }
  size_t size() const { return size_; }
  std::byte* data() const { return base_; }

  // Offset of `bytes` free bytes (64-byte aligned), or nullopt when the
  // arena has no free range that large.
  std::optional<uint64_t> Allocate(size_t bytes);
  // Returns a range from Allocate.
  void Free(uint64_t offset);
  size_t bytes_free() const;

 private:
  SharedArena(int fd, std::byte* base, size_t size, uint64_t token);

  const int fd_;
  std::byte* const base_;
  const size_t size_;
  const uint64_t token_;
  const std::string path_;
  mutable absl::Mutex mu_;
  std::map<uint64_t, uint64_t> free_ ABSL_GUARDED_BY(mu_);  // offset -> bytes, coalesced
  std::map<uint64_t, uint64_t> used_ ABSL_GUARDED_BY(mu_);  // offset -> bytes
};

class SharedMapping {
 public:
  // Opens the arena at `path` and checks it: sealed against shrinking, at
  // least `bytes` long, and starting with the arena magic and `token`.
  // InvalidArgument naming what did not match; NotFound when `path` does not
  // exist (another host, a process that has exited); otherwise the code of
  // the failed call's errno (ErrnoError).
  static absl::StatusOr<std::unique_ptr<SharedMapping>> Open(const std::string& path,
                                                             uint64_t token, uint64_t bytes);
  ~SharedMapping();
  SharedMapping(const SharedMapping&) = delete;
  SharedMapping& operator=(const SharedMapping&) = delete;

  size_t size() const { return size_; }
  // The range [offset, offset + bytes) of the arena, or null when it is not
  // inside the arena's data (past the header, before the end) or not
  // aligned for `alignment`.
  std::byte* Range(uint64_t offset, uint64_t bytes, size_t alignment) const;

 private:
  SharedMapping(std::byte* base, size_t size) : base_(base), size_(size) {}
  std::byte* const base_;
  const size_t size_;
};

}  // namespace ctrps

#endif  // CTRPS_COMMON_SHARED_MEMORY_H_
