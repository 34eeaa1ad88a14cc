// vm_probe: what this machine's kernel and hypervisor charge for what the
// parameter server's memory tier does. Four parts:
//
//   faults   the cost of a page fault (anonymous, and a write into a file
//            mapping), of mapping the same pages with MADV_POPULATE_WRITE,
//            and of the write fault after writeback cleaned a page;
//   pages    random reads in pairs: the second line in the same 4 KB page,
//            in another 4 KB page of the same 2 MB huge page, or elsewhere
//            (a host that backs huge guest pages with small ones makes the
//            middle case as slow as the last);
//   walks    random lines read in batches of 256, each batch prefetched
//            in a loop of prefetches alone and then read: 1 to 4 lines of
//            each random 4 KB page (the cost is per page when it is the
//            page walks that bound it); then 2 lines a page with a little
//            hashing per page, as a lookup does, prefetched a window at a
//            time or 8, 32 or 128 pages ahead in the same loop as the
//            reads, with and without the hashing (2 GB of memory);
//   hints    an in-memory push's memory traffic alone: random 160-byte
//            rows (dim 16 with Adagrad: 3 lines) updated with a gradient
//            line each, rows and gradients prefetched a window of 256 at
//            a time with each prefetch hint (t0: into L1; t1, t2: into L2;
//            nta), on one core over 2 GB and then on both at once, 1 GB
//            each (x86 only: elsewhere every hint is the same prefetch);
//
//   vm_probe [--parts faults,pages,walks,hints] [--dir /tmp]
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_split.h"
#include "common/flags_util.h"
#include "common/hash.h"
#include "gflags/gflags.h"
#include "worker/nn/tensor.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14; older kernels answer EINVAL
#endif

DEFINE_string(parts, "faults,pages,walks,hints",
              "which parts to run, comma-separated: faults, pages, walks, hints");
DEFINE_string(dir, "/tmp", "directory for the probe's files (the spill directory's file system)");

namespace ctrps {
namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// An anonymous mapping of `bytes`, or null after saying why.
char* MapAnonymous(size_t bytes, int advice) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    std::perror("vm_probe: mmap");
    return nullptr;
  }
  madvise(p, bytes, advice);
  return static_cast<char*>(p);
}

void Faults() {
  constexpr size_t kBytes = 256u << 20, kPages = kBytes / 4096;
  char* anon = MapAnonymous(kBytes, MADV_NOHUGEPAGE);
  if (anon == nullptr) return;
  auto t = Clock::now();
  for (size_t i = 0; i < kPages; ++i) anon[i * 4096] = 1;
  std::printf("faults: anonymous 4 KB page, first write      %6.2f us/page\n",
              Since(t) / kPages * 1e6);
  munmap(anon, kBytes);

  const std::string path = FLAGS_dir + "/vm_probe_faults";
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
  void* mapped = MAP_FAILED;
  if (fd >= 0 && posix_fallocate(fd, 0, kBytes) == 0) {
    mapped = mmap(nullptr, kBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  }
  if (mapped == MAP_FAILED) {
    std::printf("faults: cannot make and map %s\n", path.c_str());
    if (fd >= 0) close(fd);
    unlink(path.c_str());
    return;
  }
  auto* file = static_cast<char*>(mapped);
  madvise(file, kBytes, MADV_RANDOM);
  const size_t half = kPages / 2;
  t = Clock::now();
  for (size_t i = 0; i < half; ++i) file[i * 4096] = 1;
  std::printf("faults: file page, first write                %6.2f us/page\n",
              Since(t) / half * 1e6);
  t = Clock::now();
  const int populated = madvise(file + half * 4096, half * 4096, MADV_POPULATE_WRITE);
  std::printf("faults: file page, MADV_POPULATE_WRITE        %6.2f us/page%s\n",
              Since(t) / half * 1e6, populated == 0 ? "" : " (not supported)");
  fsync(fd);  // cleans every page, as writeback does
  t = Clock::now();
  for (size_t i = 0; i < half; ++i) file[i * 4096] = 2;
  std::printf("faults: file page, write after writeback      %6.2f us/page\n",
              Since(t) / half * 1e6);
  munmap(file, kBytes);
  close(fd);
  unlink(path.c_str());
}

void Pages() {
  constexpr size_t kBytes = size_t{2} << 30;
  constexpr int kPairs = 1 << 22;
  char* p = MapAnonymous(kBytes, MADV_HUGEPAGE);
  if (p == nullptr) return;
  std::memset(p, 1, kBytes);
  std::mt19937_64 rng(1);
  std::vector<uint64_t> a(kPairs), b(kPairs);
  for (int i = 0; i < kPairs; ++i) {
    a[i] = rng() % (kBytes / 4096) * 4096;
    b[i] = rng() % (kBytes / 4096) * 4096;
  }
  auto run = [&](const char* name, auto second) {
    double best = 1e9;
    uint64_t sum = 0;
    for (int round = 0; round < 3; ++round) {
      auto t = Clock::now();
      for (int i = 0; i < kPairs; ++i) {
        if (i + 12 < kPairs) {
          __builtin_prefetch(p + a[i + 12]);
          __builtin_prefetch(p + second(i + 12));
        }
        sum += *reinterpret_cast<const uint64_t*>(p + a[i]) +
               *reinterpret_cast<const uint64_t*>(p + second(i));
      }
      best = std::min(best, Since(t) / kPairs * 1e9);
    }
    std::printf("pages: second line %-38s %5.1f ns per pair%s\n", name, best, sum == 42 ? " " : "");
  };
  constexpr uint64_t kHuge = 2u << 20;
  run("in the same 4 KB page (+2 KB)", [&](int i) { return a[i] + 2048; });
  run("in another 4 KB page of the 2 MB page",
      [&](int i) { return (a[i] & ~(kHuge - 1)) + ((a[i] + kHuge / 2 + 8192) & (kHuge - 1)); });
  run("in another 2 MB page", [&](int i) { return b[i]; });
  munmap(p, kBytes);
}

void Walks() {
  constexpr size_t kBytes = size_t{2} << 30;
  constexpr int kLines = 1 << 22;
  constexpr int kWindow = 256;
  char* p = MapAnonymous(kBytes, MADV_HUGEPAGE);
  if (p == nullptr) return;
  std::memset(p, 1, kBytes);
  std::mt19937_64 rng(1);
  std::vector<uint64_t> at(kLines);
  auto draw = [&](int lines_per_page) {
    for (int i = 0; i < kLines; i += lines_per_page) {
      const uint64_t page = rng() % (kBytes / 4096) * 4096;
      for (int k = 0; k < lines_per_page && i + k < kLines; ++k)
        at[i + k] = page + (rng() % 64) * 64;
    }
  };
  auto best_of_3 = [&](auto pass) {
    double best = 1e9;
    for (int round = 0; round < 3; ++round) {
      auto t = Clock::now();
      pass();
      best = std::min(best, Since(t) / kLines * 1e9);
    }
    return best;
  };
  uint64_t sum = 0;
  for (int lines_per_page = 1; lines_per_page <= 4; ++lines_per_page) {
    draw(lines_per_page);
    const double ns = best_of_3([&] {
      for (int w = 0; w < kLines; w += kWindow) {
        for (int i = w; i < w + kWindow; ++i) __builtin_prefetch(p + at[i]);
        for (int i = w; i < w + kWindow; ++i) sum += *reinterpret_cast<const uint64_t*>(p + at[i]);
      }
    });
    std::printf("walks: %d line(s) a page, windows of %d          %5.1f ns/line %5.1f ns/page\n",
                lines_per_page, kWindow, ns, ns * lines_per_page);
  }
  // 2 lines a page again, with a little hashing per page after the reads
  // (as a lookup does), and the prefetches either a window at a time or a
  // fixed distance ahead of the reads, in the same loop.
  draw(2);
  auto work = [&](uint64_t v, int i) { return Mix64(Mix64(v + i) ^ static_cast<uint64_t>(i)); };
  const double windowed = best_of_3([&] {
    for (int w = 0; w < kLines; w += kWindow) {
      for (int i = w; i < w + kWindow; ++i) __builtin_prefetch(p + at[i]);
      for (int i = w; i < w + kWindow; i += 2) {
        sum += work(*reinterpret_cast<const uint64_t*>(p + at[i]) +
                        *reinterpret_cast<const uint64_t*>(p + at[i + 1]),
                    i);
      }
    }
  });
  std::printf("walks: 2 lines a page, hashing, windows of %d     %5.1f ns/line %5.1f ns/page\n",
              kWindow, windowed, windowed * 2);
  for (int pages_ahead : {8, 32, 128}) {
    for (bool hashing : {false, true}) {
      const int d = 2 * pages_ahead;
      const double ns = best_of_3([&] {
        for (int i = 0; i < kLines; i += 2) {
          if (i + d + 1 < kLines) {
            __builtin_prefetch(p + at[i + d]);
            __builtin_prefetch(p + at[i + d + 1]);
          }
          const uint64_t v = *reinterpret_cast<const uint64_t*>(p + at[i]) +
                             *reinterpret_cast<const uint64_t*>(p + at[i + 1]);
          sum += hashing ? work(v, i) : v;
        }
      });
      std::printf("walks: 2 lines a page, %s, %3d pages ahead %5.1f ns/line %5.1f ns/page%s\n",
                  hashing ? "hashing" : "no hash", pages_ahead, ns, ns * 2, sum == 42 ? " " : "");
    }
  }
  munmap(p, kBytes);
}

enum class Hint { kT0, kT1, kT2, kNta };

template <Hint H>
inline void PrefetchWith(const char* p) {
#if !defined(__x86_64__)
  __builtin_prefetch(p);
#else
  if constexpr (H == Hint::kT0) asm volatile("prefetcht0 %0" : : "m"(*p));
  if constexpr (H == Hint::kT1) asm volatile("prefetcht1 %0" : : "m"(*p));
  if constexpr (H == Hint::kT2) asm volatile("prefetcht2 %0" : : "m"(*p));
  if constexpr (H == Hint::kNta) asm volatile("prefetchnta %0" : : "m"(*p));
#endif
}

// One core's share of the hints part: `rows` of 160 bytes, 100k random of
// them updated per pass from 100k gradients of 16 floats.
struct PushProbe {
  static constexpr size_t kRowBytes = 160, kKeys = 100000, kWindow = 256, kDim = 16;
  char* rows = nullptr;
  size_t count = 0;
  std::vector<uint32_t> at;
  nn::AlignedVector grads;  // each gradient one whole line, as in a request's buffer

  PushProbe(char* memory, size_t bytes, uint64_t seed)
      : rows(memory), count(bytes / kRowBytes), at(kKeys), grads(kKeys * kDim, 0.001f) {
    std::mt19937_64 rng(seed);
    for (auto& a : at) a = static_cast<uint32_t>(rng() % count);
  }

  // Nanoseconds a row, best of 3 rounds of 10 passes.
  template <Hint H>
  double Run() {
    double best = 1e9;
    for (int round = 0; round < 3; ++round) {
      const auto t = Clock::now();
      for (int pass = 0; pass < 10; ++pass) {
        for (size_t w = 0; w < kKeys; w += kWindow) {
          const size_t end = std::min(kKeys, w + kWindow);
          for (size_t k = w; k < end; ++k) {
            const char* row = rows + size_t{at[(k + pass * 7919) % kKeys]} * kRowBytes;
            const auto first = reinterpret_cast<uintptr_t>(row) & ~uintptr_t{63};
            for (uintptr_t line = first; line < reinterpret_cast<uintptr_t>(row) + kRowBytes;
                 line += 64) {
              PrefetchWith<H>(reinterpret_cast<const char*>(line));
            }
            PrefetchWith<H>(reinterpret_cast<const char*>(grads.data() + k * kDim));
          }
          for (size_t k = w; k < end; ++k) {
            char* row = rows + size_t{at[(k + pass * 7919) % kKeys]} * kRowBytes;
            ++*reinterpret_cast<uint32_t*>(row + 12);  // the metadata's update count
            float* weights = reinterpret_cast<float*>(row + 32);
            float* acc = weights + kDim;
            const float* g = grads.data() + k * kDim;
            for (size_t d = 0; d < kDim; ++d) {
              acc[d] += g[d] * g[d];
              weights[d] -= 0.01f * g[d] / (std::sqrt(acc[d]) + 1e-8f);
            }
          }
        }
      }
      best = std::min(best, Since(t) / (10.0 * kKeys) * 1e9);
    }
    return best;
  }
};

void Hints() {
  constexpr size_t kBytes = size_t{2} << 30;
  char* p = MapAnonymous(kBytes, MADV_HUGEPAGE);
  if (p == nullptr) return;
  std::memset(p, 1, kBytes);
  PushProbe one(p, kBytes, 1);
  PushProbe halves[2] = {PushProbe(p, kBytes / 2, 2), PushProbe(p + kBytes / 2, kBytes / 2, 3)};
  const char* names[] = {"t0", "t1", "t2", "nta"};
  double solo[4], both[4];
  auto run = [](PushProbe& probe, int hint) {
    switch (hint) {
      case 0:
        return probe.Run<Hint::kT0>();
      case 1:
        return probe.Run<Hint::kT1>();
      case 2:
        return probe.Run<Hint::kT2>();
      default:
        return probe.Run<Hint::kNta>();
    }
  };
  for (int h = 0; h < 4; ++h) {
    solo[h] = run(one, h);
    double each[2];
    std::thread other([&] { each[1] = run(halves[1], h); });
    each[0] = run(halves[0], h);
    other.join();
    both[h] = 1 / (1 / each[0] + 1 / each[1]);  // ns a row for the two cores together
  }
  for (int h = 0; h < 4; ++h) {
    std::printf(
        "hints: prefetch%-4s one core %5.1f ns/row (%.2fx t0's rate), two cores %5.1f ns/row "
        "(%.2fx)\n",
        names[h], solo[h], solo[0] / solo[h], both[h], both[0] / both[h]);
  }
  munmap(p, kBytes);
}

int Main() {
  int rc = 0;
  for (const auto& part : absl::StrSplit(FLAGS_parts, ',')) {
    if (part == "faults") {
      Faults();
    } else if (part == "pages") {
      Pages();
    } else if (part == "walks") {
      Walks();
    } else if (part == "hints") {
      Hints();
    } else {
      std::fprintf(stderr, "vm_probe: unknown part \"%s\" (faults, pages, walks, hints)\n",
                   std::string(part).c_str());
      return 1;
    }
    std::fflush(stdout);
  }
  return rc;
}

}  // namespace
}  // namespace ctrps

int main(int argc, char** argv) {
  ctrps::ParseFlags(&argc, &argv,
                    "what this machine charges for page faults, page walks and prefetch hints\n"
                    "  vm_probe [--parts faults,pages,walks,hints] [--dir /tmp]");
  return ctrps::Main();
}
