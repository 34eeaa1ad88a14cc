// The secrets of one job: who may talk to its parameter servers.
//
// - member_token: every request of the job's clients carries it
//   (RequestHeader.auth); a server given one refuses requests without it.
// - chief_token: the chief's client carries it instead; only it may
//   SHUTDOWN, SAVE and LOAD, and only its requests advance the global step
//   the servers' TTL eviction counts in.
// - CURVE key pairs (Z85 text, 40 characters each): the servers' and the
//   clients'. With CURVE on, a server accepts only connections that present
//   the job's client public key; everything on the wire is encrypted.
//
// Secrets are drawn at launch (NewJobSecrets) and handed to the ranks
// through MPI, or made once by `ctr-keygen FILE` and read from that file
// (mode 0600) by a standalone server and its workers. They never appear on
// a command line or in the environment.
//
// Thread safety: plain values and free functions.
#ifndef CTRPS_COMMON_SECURITY_H_
#define CTRPS_COMMON_SECURITY_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ctrps {

struct JobSecrets {
  std::string member_token;                          // 32 random bytes
  std::string chief_token;                           // 32 random bytes
  std::string server_public_key, server_secret_key;  // Z85, empty without CURVE
  std::string client_public_key, client_secret_key;  // Z85, empty without CURVE

  bool has_curve_keys() const {
    return server_public_key.size() == 40 && server_secret_key.size() == 40 &&
           client_public_key.size() == 40 && client_secret_key.size() == 40;
  }
};

// Whether this libzmq supports CURVE (built with libsodium).
bool CurveAvailable();

// Fresh tokens from the kernel's random source, and CURVE key pairs when
// CurveAvailable(). Internal when the random source or key generation
// fails.
absl::StatusOr<JobSecrets> NewJobSecrets();

// One line per field ("member_token <hex>", ...). Parse: InvalidArgument
// naming the first bad line, or a token that is not 32 bytes.
std::string SerializeJobSecrets(const JobSecrets& secrets);
absl::StatusOr<JobSecrets> ParseJobSecrets(absl::string_view text);

// Writes a new key file readable and writable by its owner only (0600,
// created exclusively: an existing file is not overwritten). The errno's
// code (AlreadyExists when the file exists).
absl::Status WriteKeyFile(const std::string& path, const JobSecrets& secrets);
// Reads a key file. PermissionDenied when the group or others may read or
// write it (it would not be secret); the errno's code when it cannot be
// read; ParseJobSecrets' codes.
absl::StatusOr<JobSecrets> ReadKeyFile(const std::string& path);

// Compares two secrets in time that does not depend on where they differ.
// False when either is empty.
bool SecretsEqual(absl::string_view a, absl::string_view b);

}  // namespace ctrps

#endif  // CTRPS_COMMON_SECURITY_H_
