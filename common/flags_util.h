// Helpers for main files (libraries never read flags).
#ifndef CTRPS_COMMON_FLAGS_UTIL_H_
#define CTRPS_COMMON_FLAGS_UTIL_H_

#include <cstring>
#include <string>
#include <vector>

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

}  // namespace ctrps

#endif  // CTRPS_COMMON_FLAGS_UTIL_H_
