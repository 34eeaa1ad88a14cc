#include "common/shared_memory.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace ctrps {
namespace {

TEST(SharedMemoryTest, MappingSeesWhatTheArenaWrites) {
  auto arena = SharedArena::Create(1 << 20);
  ASSERT_TRUE(arena.ok()) << arena.status();
  auto mapping = SharedMapping::Open((*arena)->path(), (*arena)->token(), (*arena)->size());
  ASSERT_TRUE(mapping.ok()) << mapping.status();
  auto off = (*arena)->Allocate(4096);
  ASSERT_TRUE(off.has_value());
  std::byte* mine = (*arena)->data() + *off;
  std::byte* theirs = (*mapping)->Range(*off, 4096, 8);
  ASSERT_NE(theirs, nullptr);
  std::memset(mine, 0x5a, 4096);
  EXPECT_EQ(std::to_integer<int>(theirs[4095]), 0x5a);
  theirs[0] = std::byte{7};
  EXPECT_EQ(std::to_integer<int>(mine[0]), 7);
}

TEST(SharedMemoryTest, WrongTokenOrSizeIsRefused) {
  auto arena = SharedArena::Create(1 << 20);
  ASSERT_TRUE(arena.ok());
  auto bad_token = SharedMapping::Open((*arena)->path(), (*arena)->token() + 1, (*arena)->size());
  EXPECT_EQ(bad_token.status().code(), absl::StatusCode::kInvalidArgument) << bad_token.status();
  auto bad_size = SharedMapping::Open((*arena)->path(), (*arena)->token(), (*arena)->size() * 2);
  EXPECT_EQ(bad_size.status().code(), absl::StatusCode::kInvalidArgument) << bad_size.status();
  auto missing = SharedMapping::Open("/proc/self/fd/99999", 1, 1 << 20);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound) << missing.status();
}

TEST(SharedMemoryTest, UnsealedFileIsRefused) {
  // A file that could shrink under the mapping would fault the server.
  const int fd = memfd_create("unsealed", MFD_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, 1 << 20), 0);
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  auto m = SharedMapping::Open(path, 0, 1 << 20);
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument) << m.status();
  EXPECT_NE(m.status().message().find("sealed"), std::string::npos) << m.status();
  close(fd);
}

TEST(SharedMemoryTest, RangeOutsideTheArenaIsNull) {
  auto arena = SharedArena::Create(1 << 20);
  ASSERT_TRUE(arena.ok());
  auto m = SharedMapping::Open((*arena)->path(), (*arena)->token(), (*arena)->size());
  ASSERT_TRUE(m.ok());
  const uint64_t size = (*m)->size();
  EXPECT_EQ((*m)->Range(0, 8, 8), nullptr);                    // the header
  EXPECT_EQ((*m)->Range(size - 8, 16, 8), nullptr);            // runs past the end
  EXPECT_EQ((*m)->Range(size + 64, 0, 8), nullptr);            // starts past the end
  EXPECT_EQ((*m)->Range(128, ~uint64_t{0} - 64, 8), nullptr);  // wraps around
  EXPECT_EQ((*m)->Range(130, 8, 8), nullptr);                  // misaligned
  EXPECT_NE((*m)->Range(size - 8, 8, 8), nullptr);
}

TEST(SharedMemoryTest, AllocatorNeverHandsOutOverlappingRangesAndCoalesces) {
  auto arena = SharedArena::Create(1 << 20);
  ASSERT_TRUE(arena.ok());
  SharedArena& a = **arena;
  const size_t all_free = a.bytes_free();
  std::mt19937 rng(3);
  std::vector<std::pair<uint64_t, uint64_t>> live;  // offset, bytes
  for (int step = 0; step < 5000; ++step) {
    if (live.empty() || rng() % 3 != 0) {
      const uint64_t bytes = 1 + rng() % 40000;
      auto off = a.Allocate(bytes);
      if (!off) continue;  // full for now
      EXPECT_EQ(*off % 64, 0u);
      EXPECT_GE(*off, kSharedArenaHeaderBytes);
      EXPECT_LE(*off + bytes, a.size());
      for (const auto& [o, b] : live) {
        ASSERT_TRUE(*off + bytes <= o || o + b <= *off) << "overlap at step " << step;
      }
      live.emplace_back(*off, bytes);
    } else {
      const size_t i = rng() % live.size();
      a.Free(live[i].first);
      live.erase(live.begin() + i);
    }
  }
  for (const auto& [o, b] : live) a.Free(o);
  EXPECT_EQ(a.bytes_free(), all_free);
  // Coalesced back into one range: the largest request fits again.
  EXPECT_TRUE(a.Allocate(all_free).has_value());
  EXPECT_FALSE(a.Allocate(64).has_value());
}

}  // namespace
}  // namespace ctrps
