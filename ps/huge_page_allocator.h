// Memory for big random-access structures (row slabs, hash indexes): large
// blocks are mmap'ed and advised to use transparent huge pages, so a lookup
// into gigabytes of rows costs a cache miss, not also a TLB walk. Pages are
// committed lazily by the kernel, so reserving a large block is cheap until
// it is touched.
#ifndef CTRPS_PS_HUGE_PAGE_ALLOCATOR_H_
#define CTRPS_PS_HUGE_PAGE_ALLOCATOR_H_

#include <sys/mman.h>

#include <cstddef>
#include <cstdlib>
#include <new>

namespace ctrps {

inline constexpr size_t kHugePageBytes = 2u << 20;
// Blocks at least this large go to mmap with MADV_HUGEPAGE.
inline constexpr size_t kHugeBlockThreshold = 1u << 20;

inline void* AllocateBlock(size_t bytes) {
  if (bytes < kHugeBlockThreshold) {
    void* p = std::malloc(bytes);
    if (p == nullptr) throw std::bad_alloc();
    return p;
  }
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
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
  bool operator==(const HugePageAllocator<U>&) const { return true; }
  template <typename U>
  bool operator!=(const HugePageAllocator<U>&) const { return false; }
};

}  // namespace ctrps

#endif  // CTRPS_PS_HUGE_PAGE_ALLOCATOR_H_
