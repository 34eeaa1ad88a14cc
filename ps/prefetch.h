// Software prefetch of cache lines.
//
// An asm statement rather than __builtin_prefetch: GCC treats the builtin as
// free of side effects, so a function whose only effect is to prefetch is
// found pure and every call to it deleted. That silently removed the row
// prefetches of SparseTable's pull and push (40-60% of their speed).
//
// Not into L1 (prefetcht0) but prefetcht2, which the x86 cores we measured
// fill into L2 (T1 and T2 behave alike there; what T2 fills is up to the
// implementation). The table prefetches a stripe group's lines at once
// (about 128 keys, up to 256): far more than L1 can have in flight. A
// prefetch into L1 holds one of its few miss buffers until the line arrives,
// so the prefetch loop stalled on them (60-70% of PushBlock's samples). L2
// keeps more misses in flight and a window's lines fit in it, so the loop
// that then reads them finds them there. Single-threaded `table_bench`
// pulls 1.15-1.4x, pushes 1.6-1.9x; `ps_bench` pulls median 1.29x, pushes
// median 1.68x (docs/BENCHMARKS.md, "What each mechanism buys"; `vm_probe
// --parts hints`).
#ifndef CTRPS_PS_PREFETCH_H_
#define CTRPS_PS_PREFETCH_H_

#include <cstddef>
#include <cstdint>

namespace ctrps {

inline void PrefetchLine(const void* p) {
#if defined(__x86_64__)
  asm volatile("prefetcht2 %0" : : "m"(*static_cast<const char*>(p)));
#else
  __builtin_prefetch(p, /*rw=*/0, /*locality=*/2);  // an L2 prefetch where the target has one
#endif
}

// Every cache line of [p, p + bytes), wherever p falls within its line.
inline void PrefetchBytes(const void* p, size_t bytes) {
  const auto first = reinterpret_cast<uintptr_t>(p) & ~uintptr_t{63};
  const auto end = reinterpret_cast<uintptr_t>(p) + bytes;
  for (uintptr_t line = first; line < end; line += 64)
    PrefetchLine(reinterpret_cast<const void*>(line));
}

}  // namespace ctrps

#endif  // CTRPS_PS_PREFETCH_H_
