// Software prefetch of one cache line.
//
// An asm statement rather than __builtin_prefetch: GCC treats the builtin as
// free of side effects, so a function whose only effect is to prefetch is
// found pure and every call to it deleted. That silently removed the row
// prefetches of SparseTable's pull and push (40-60% of their speed).
#ifndef CTRPS_PS_PREFETCH_H_
#define CTRPS_PS_PREFETCH_H_

namespace ctrps {

inline void PrefetchLine(const void* p) {
#if defined(__x86_64__)
  asm volatile("prefetcht0 %0" : : "m"(*static_cast<const char*>(p)));
#else
  __builtin_prefetch(p);
#endif
}

}  // namespace ctrps

#endif  // CTRPS_PS_PREFETCH_H_
