// Memory for big random-access structures (row slabs, hash indexes): large
// blocks are mmap'ed and advised to use transparent huge pages, so a lookup
// into gigabytes of rows costs a cache miss, not also a TLB walk. Pages are
// committed lazily by the kernel, so reserving a large block is cheap until
// it is touched.
#ifndef CTRPS_PS_HUGE_PAGE_ALLOCATOR_H_
#define CTRPS_PS_HUGE_PAGE_ALLOCATOR_H_

#include <sys/mman.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>

namespace ctrps {

inline constexpr size_t kHugePageBytes = 2u << 20;
// Blocks at least this large go to mmap with MADV_HUGEPAGE.
inline constexpr size_t kHugeBlockThreshold = 1u << 20;

// Large blocks start on a 2 MB boundary: the kernel backs only aligned 2 MB
// ranges of a mapping with huge pages, and a block at an arbitrary address
// loses its first one (a 1.3 MB block got none, so every random read in it
// walked the 4 KB page tables: twice the time per row). The size is not
// rounded up, so the memory charged for a block is the memory it can use;
// only a tail under 2 MB stays in small pages.
inline void* AllocateBlock(size_t bytes) {
  if (bytes < kHugeBlockThreshold) {
    // Whole cache lines, so that structures laid out in lines (KeyIndex)
    // are not split across two.
    void* p = std::aligned_alloc(64, std::max<size_t>(64, (bytes + 63) & ~size_t{63}));
    if (p == nullptr) throw std::bad_alloc();
    return p;
  }
  // Map a huge page more than needed (in whole small pages, as mmap does),
  // then trim to the aligned range.
  constexpr size_t kPage = 4096;
  const size_t mapped = ((bytes + kPage - 1) & ~(kPage - 1)) + kHugePageBytes;
  void* raw = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) throw std::bad_alloc();
  const uintptr_t start = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = (start + kHugePageBytes - 1) & ~uintptr_t{kHugePageBytes - 1};
  if (aligned > start) munmap(raw, aligned - start);
  const uintptr_t end = aligned + mapped - kHugePageBytes;
  if (start + mapped > end) munmap(reinterpret_cast<void*>(end), start + mapped - end);
  void* p = reinterpret_cast<void*>(aligned);
  madvise(p, bytes, MADV_HUGEPAGE);  // a hint: failure just means small pages
  return p;
}

inline void FreeBlock(void* p, size_t bytes) {
  if (p == nullptr) return;
  if (bytes < kHugeBlockThreshold) {
    std::free(p);
  } else {
    munmap(p, bytes);
  }
}

// std allocator interface over AllocateBlock, for containers' big arrays.
template <typename T>
struct HugePageAllocator {
  using value_type = T;
  HugePageAllocator() = default;
  template <typename U>
  HugePageAllocator(const HugePageAllocator<U>&) {}
  T* allocate(size_t n) { return static_cast<T*>(AllocateBlock(n * sizeof(T))); }
  void deallocate(T* p, size_t n) { FreeBlock(p, n * sizeof(T)); }
  template <typename U>
  bool operator==(const HugePageAllocator<U>&) const {
    return true;
  }
  template <typename U>
  bool operator!=(const HugePageAllocator<U>&) const {
    return false;
  }
};

}  // namespace ctrps

#endif  // CTRPS_PS_HUGE_PAGE_ALLOCATOR_H_
