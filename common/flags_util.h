// Helpers for main files (libraries never read flags).
#ifndef CTRPS_COMMON_FLAGS_UTIL_H_
#define CTRPS_COMMON_FLAGS_UTIL_H_

#include <cstdlib>
#include <cstring>
#include <source_location>
#include <string>
#include <string_view>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gflags/gflags.h"

namespace ctrps {

// Removes every "--name value" / "--name=value" from argv and returns the
// values in order: gflags keeps only the last of a repeated flag, and
// "--set a=1 --set b=2" must keep both.
inline std::vector<std::string> TakeRepeatedFlag(int* argc, char** argv, const char* name) {
  std::vector<std::string> values;
  const std::string flag = std::string("--") + name;
  int out = 1;
  for (int i = 1; i < *argc; ++i) {
    std::string arg = argv[i];
    if (arg == flag && i + 1 < *argc) {
      values.push_back(argv[++i]);
    } else if (arg.rfind(flag + "=", 0) == 0) {
      values.push_back(arg.substr(flag.size() + 1));
    } else {
      argv[out++] = argv[i];
    }
  }
  *argc = out;
  argv[out] = nullptr;
  return values;
}

// Turns off absl::Mutex's lock-order graph in release builds; every
// program's main calls this (through ParseFlags, or itself). Debian builds
// absl without NDEBUG, which leaves the graph on: every lock then looks
// itself up in a table behind one process-wide lock (table_bench's
// BM_MutexLock: 49 against 15 ns a lock uncontended; in the in-memory
// ps_bench, absl's mutex code fell from 2.1% to 1.3% of the samples). CTRPS_LOCK_ORDER_CHECKS=1
// in the environment keeps the checks: the tests that run the programs set
// it (tests/CMakeLists.txt), and the gtest binaries never call this.
inline void SkipLockOrderChecksInRelease() {
#ifdef NDEBUG
  const char* keep = std::getenv("CTRPS_LOCK_ORDER_CHECKS");
  if (keep != nullptr && std::strcmp(keep, "1") == 0) return;
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
#endif
}

// Sets the usage message and parses the command line. --help (also -help
// and -h) prints the usage and the flags of the file that calls this, the
// one with main(), which are all a program has (libraries read none), and
// exits 0. gflags' own --help buries them under the logging library's
// thirty, and its --helpshort finds no file when the binary is named
// ctr-export but its main is in ctr_export_main.cc. --helpfull still lists
// every flag. Also turns off the lock-order checks (SkipLockOrderChecksInRelease).
inline void ParseFlags(int* argc, char*** argv, const std::string& usage,
                       std::source_location caller = std::source_location::current()) {
  gflags::SetUsageMessage(usage + "\n  (--helpfull also lists the logging library's flags)");
  for (int i = 1; i < *argc; ++i) {
    const char* arg = (*argv)[i];
    if (std::strcmp(arg, "--") == 0) break;
    if (std::strcmp(arg, "--help") == 0 || std::strcmp(arg, "-help") == 0 ||
        std::strcmp(arg, "-h") == 0) {
      const std::string_view file = caller.file_name();
      std::string own = "/";
      own.append(file.substr(file.rfind('/') + 1));
      gflags::ShowUsageWithFlagsRestrict((*argv)[0], own.c_str());
      std::exit(0);
    }
  }
  gflags::ParseCommandLineFlags(argc, argv, true);
  SkipLockOrderChecksInRelease();
}

}  // namespace ctrps

#endif  // CTRPS_COMMON_FLAGS_UTIL_H_
