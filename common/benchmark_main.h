// main() for the Google Benchmark programs: BENCHMARK_MAIN()'s, after
// turning off the lock-order checks as every program does
// (common/flags_util.h). Include it only where benchmark is linked.
#ifndef CTRPS_COMMON_BENCHMARK_MAIN_H_
#define CTRPS_COMMON_BENCHMARK_MAIN_H_

#include "benchmark/benchmark.h"
#include "common/flags_util.h"

#define CTRPS_BENCHMARK_MAIN()                                        \
  int main(int argc, char** argv) {                                   \
    ctrps::SkipLockOrderChecksInRelease();                            \
    benchmark::Initialize(&argc, argv);                               \
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1; \
    benchmark::RunSpecifiedBenchmarks();                              \
    benchmark::Shutdown();                                            \
    return 0;                                                         \
  }                                                                   \
  static_assert(true, "a semicolon after CTRPS_BENCHMARK_MAIN() is needed")

#endif  // CTRPS_COMMON_BENCHMARK_MAIN_H_
