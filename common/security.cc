#include "common/security.h"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/status.h"
#include "zmq.h"

namespace ctrps {
namespace {

constexpr size_t kTokenBytes = 32;

absl::StatusOr<std::string> RandomBytes(size_t n) {
  std::string out(n, '\0');
  size_t got = 0;
  while (got < n) {
    const ssize_t r = getrandom(out.data() + got, n - got, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("getrandom", "cannot draw a secret");
    }
    got += static_cast<size_t>(r);
  }
  return out;
}

}  // namespace

bool CurveAvailable() { return zmq_has("curve") != 0; }

absl::StatusOr<JobSecrets> NewJobSecrets() {
  JobSecrets s;
  ASSIGN_OR_RETURN(s.member_token, RandomBytes(kTokenBytes));
  ASSIGN_OR_RETURN(s.chief_token, RandomBytes(kTokenBytes));
  if (CurveAvailable()) {
    char pub[41], sec[41];
    if (zmq_curve_keypair(pub, sec) != 0) return absl::InternalError("zmq_curve_keypair failed");
    s.server_public_key = pub;
    s.server_secret_key = sec;
    if (zmq_curve_keypair(pub, sec) != 0) return absl::InternalError("zmq_curve_keypair failed");
    s.client_public_key = pub;
    s.client_secret_key = sec;
  }
  return s;
}

std::string SerializeJobSecrets(const JobSecrets& s) {
  return absl::StrCat("member_token ", absl::BytesToHexString(s.member_token), "\n", "chief_token ",
                      absl::BytesToHexString(s.chief_token), "\n", "server_public_key ",
                      s.server_public_key, "\n", "server_secret_key ", s.server_secret_key, "\n",
                      "client_public_key ", s.client_public_key, "\n", "client_secret_key ",
                      s.client_secret_key, "\n");
}

absl::StatusOr<JobSecrets> ParseJobSecrets(absl::string_view text) {
  JobSecrets s;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_no;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    std::vector<absl::string_view> kv = absl::StrSplit(line, absl::MaxSplits(' ', 1));
    const absl::string_view value = kv.size() == 2 ? absl::StripAsciiWhitespace(kv[1]) : "";
    auto bad = [&](absl::string_view why) {
      return absl::InvalidArgumentError(absl::StrCat("key line ", line_no, ": ", why));
    };
    auto token = [&](std::string* out) -> absl::Status {
      if (value.size() != 2 * kTokenBytes ||
          value.find_first_not_of("0123456789abcdefABCDEF") != absl::string_view::npos) {
        return bad(absl::StrCat(kv[0], " must be ", 2 * kTokenBytes, " hex digits"));
      }
      *out = absl::HexStringToBytes(value);
      return absl::OkStatus();
    };
    auto curve = [&](std::string* out) -> absl::Status {
      if (!value.empty() && value.size() != 40)
        return bad(absl::StrCat(kv[0], " must be 40 Z85 characters"));
      *out = std::string(value);
      return absl::OkStatus();
    };
    if (kv[0] == "member_token") {
      RETURN_IF_ERROR(token(&s.member_token));
    } else if (kv[0] == "chief_token") {
      RETURN_IF_ERROR(token(&s.chief_token));
    } else if (kv[0] == "server_public_key") {
      RETURN_IF_ERROR(curve(&s.server_public_key));
    } else if (kv[0] == "server_secret_key") {
      RETURN_IF_ERROR(curve(&s.server_secret_key));
    } else if (kv[0] == "client_public_key") {
      RETURN_IF_ERROR(curve(&s.client_public_key));
    } else if (kv[0] == "client_secret_key") {
      RETURN_IF_ERROR(curve(&s.client_secret_key));
    } else {
      return bad(absl::StrCat("unknown field \"", kv[0], "\""));
    }
  }
  if (s.member_token.size() != kTokenBytes || s.chief_token.size() != kTokenBytes) {
    return absl::InvalidArgumentError("keys: member_token and chief_token are required");
  }
  return s;
}

absl::Status WriteKeyFile(const std::string& path, const JobSecrets& secrets) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoError(path, "cannot create");
  const std::string text = SerializeJobSecrets(secrets);
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t w = write(fd, text.data() + done, text.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      const int err = errno;
      close(fd);
      unlink(path.c_str());
      return ErrnoError(path, "cannot write", err);
    }
    done += static_cast<size_t>(w);
  }
  if (fsync(fd) != 0 || close(fd) != 0) return ErrnoError(path, "cannot write");
  return absl::OkStatus();
}

absl::StatusOr<JobSecrets> ReadKeyFile(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError(path, "cannot open");
  struct stat st;
  if (fstat(fd, &st) != 0) {
    const int err = errno;
    close(fd);
    return ErrnoError(path, "cannot stat", err);
  }
  if ((st.st_mode & 077) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return absl::PermissionDeniedError(absl::StrFormat(
        "%s: a key file must be a regular file only its owner may read (chmod 600), not mode %o",
        path, st.st_mode & 0777));
  }
  std::string text;
  char buf[4096];
  while (text.size() < (1 << 16)) {
    const ssize_t r = read(fd, buf, sizeof(buf));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      const int err = errno;
      close(fd);
      return ErrnoError(path, "cannot read", err);
    }
    if (r == 0) break;
    text.append(buf, static_cast<size_t>(r));
  }
  close(fd);
  auto s = ParseJobSecrets(text);
  if (!s.ok())
    return absl::Status(s.status().code(), absl::StrCat(path, ": ", s.status().message()));
  return s;
}

bool SecretsEqual(absl::string_view a, absl::string_view b) {
  if (a.empty() || b.empty() || a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace ctrps
