// Software prefetch of cache lines.
//
// An asm statement rather than __builtin_prefetch: GCC treats the builtin as
// free of side effects, so a function whose only effect is to prefetch is
// found pure and every call to it deleted. That silently removed the row
// prefetches of SparseTable's pull and push (40-60% of their speed).
#ifndef CTRPS_PS_PREFETCH_H_
#define CTRPS_PS_PREFETCH_H_

#include <cstddef>
#include <cstdint>

namespace ctrps {

inline void PrefetchLine(const void* p) {
#if defined(__x86_64__)
  asm volatile("prefetcht0 %0" : : "m"(*static_cast<const char*>(p)));
#else
  __builtin_prefetch(p);
#endif
}

// Every cache line of [p, p + bytes), wherever p falls within its line.
inline void PrefetchBytes(const void* p, size_t bytes) {
  const auto first = reinterpret_cast<uintptr_t>(p) & ~uintptr_t{63};
  const auto end = reinterpret_cast<uintptr_t>(p) + bytes;
  for (uintptr_t line = first; line < end; line += 64) PrefetchLine(reinterpret_cast<const void*>(line));
}

}  // namespace ctrps

#endif  // CTRPS_PS_PREFETCH_H_
