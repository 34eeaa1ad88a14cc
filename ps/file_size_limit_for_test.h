// Tests of a full disk: while a ScopedFileSizeLimit lives, no file of this
// process may grow past `bytes` (RLIMIT_FSIZE), so reserving space fails the
// way it does on a full disk. SIGXFSZ is ignored so that the failure is an
// error, not a signal. The old limit comes back with the object, even when
// a test assertion returns early.
#ifndef CTRPS_PS_FILE_SIZE_LIMIT_FOR_TEST_H_
#define CTRPS_PS_FILE_SIZE_LIMIT_FOR_TEST_H_

#include <sys/resource.h>

#include <csignal>

namespace ctrps {

class ScopedFileSizeLimit {
 public:
  explicit ScopedFileSizeLimit(rlim_t bytes) {
    std::signal(SIGXFSZ, SIG_IGN);
    getrlimit(RLIMIT_FSIZE, &old_);
    rlimit small = old_;
    small.rlim_cur = bytes;
    ok_ = setrlimit(RLIMIT_FSIZE, &small) == 0;
  }
  ~ScopedFileSizeLimit() { setrlimit(RLIMIT_FSIZE, &old_); }
  ScopedFileSizeLimit(const ScopedFileSizeLimit&) = delete;
  ScopedFileSizeLimit& operator=(const ScopedFileSizeLimit&) = delete;

  bool ok() const { return ok_; }  // whether the limit was set

 private:
  rlimit old_;
  bool ok_ = false;
};

}  // namespace ctrps

#endif  // CTRPS_PS_FILE_SIZE_LIMIT_FOR_TEST_H_
