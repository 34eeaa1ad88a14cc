// ctr-keygen: makes a job's key file (common/security.h) for servers and
// workers started without mpirun, or for jobs that keep one set of keys.
//   ctr-keygen --out keys/job.keys
// The file is created mode 0600 and never overwritten; give its path to the
// job as cluster.security.key_file.
#include <cstdio>

#include "common/flags_util.h"
#include "common/security.h"
#include "gflags/gflags.h"

DEFINE_string(out, "", "key file to create (mode 0600; an existing file is not overwritten)");

int main(int argc, char** argv) {
  ctrps::ParseFlags(&argc, &argv,
                    "makes a job's key file (member and chief secrets, CURVE key pairs)\n"
                    "  ctr-keygen --out FILE     then set cluster.security.key_file: \"FILE\"");
  if (FLAGS_out.empty()) {
    std::fprintf(stderr, "ctr-keygen: --out is required (see --help)\n");
    return 1;
  }
  auto secrets = ctrps::NewJobSecrets();
  absl::Status s = secrets.ok() ? ctrps::WriteKeyFile(FLAGS_out, *secrets) : secrets.status();
  if (!s.ok()) {
    std::fprintf(stderr, "ctr-keygen: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  std::printf("ctr-keygen: wrote %s (%s)\n", FLAGS_out.c_str(),
              secrets->has_curve_keys() ? "with CURVE key pairs" : "no CURVE: libzmq lacks it");
  return 0;
}
