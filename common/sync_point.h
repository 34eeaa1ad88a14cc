// Sync points for concurrency tests (RocksDB's TEST_SYNC_POINT): named places
// in production code through which a test orders threads, instead of
// sleeping and polling.
//
//   TEST_SYNC_POINT("PsServer::GroupShare:Alone");
//   TEST_SYNC_POINT_CALLBACK("PsServer::GroupShare:BeforeBlock", &block);
//
// The macros expand to nothing unless CTRPS_SYNC_POINTS is defined, which
// only test builds of a library do (tests/CMakeLists.txt builds the server
// library a second time with it), so production binaries carry no trace of
// them. In a test:
//
//   SyncPoint* sp = SyncPoint::Get();
//   sp->LoadDependency({{"A", "B"}});   // a thread reaching B waits until A was passed
//   sp->SetCallBack("C", [](void* arg) { ... });
//   sp->EnableProcessing();
//   ... run ...
//   sp->DisableProcessing();
//   sp->ClearAll();
//
// The one process-wide instance is a test facility: production code only
// names points, and never reads the instance.
#ifndef CTRPS_COMMON_SYNC_POINT_H_
#define CTRPS_COMMON_SYNC_POINT_H_

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace ctrps {

// Thread-safe.
class SyncPoint {
 public:
  struct Dependency {
    std::string predecessor;
    std::string successor;
  };

  static SyncPoint* Get();

  // Replaces the dependencies: a thread that reaches `successor` waits until
  // some thread has passed `predecessor` (or, past the wait limit, goes on
  // and counts a timeout).
  void LoadDependency(const std::vector<Dependency>& dependencies);

  // Runs `callback` with the point's argument whenever a thread passes
  // `point` (after its dependencies are met), outside any lock of this class.
  void SetCallBack(const std::string& point, std::function<void(void*)> callback);

  void EnableProcessing();
  void DisableProcessing();
  // Forgets dependencies, callbacks, passed points and timeouts.
  void ClearAll();

  // True once some thread has passed `point` since the last ClearAll().
  bool Passed(const std::string& point);
  // Waits up to `timeout` for `point` to be passed; returns Passed(point).
  bool WaitFor(const std::string& point, absl::Duration timeout);
  // Dependencies given up on after the wait limit since the last ClearAll().
  int timeouts();

  // How long a successor waits for its predecessors; bounds a test that
  // goes wrong instead of letting it hang.
  void set_wait_limit(absl::Duration limit);

  // Called through the macros only.
  void Process(const std::string& point, void* arg = nullptr);

 private:
  SyncPoint() = default;

  absl::Mutex mu_;
  bool enabled_ ABSL_GUARDED_BY(mu_) = false;
  absl::Duration wait_limit_ ABSL_GUARDED_BY(mu_) = absl::Seconds(10);
  absl::flat_hash_map<std::string, std::vector<std::string>> predecessors_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::function<void(void*)>> callbacks_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<std::string> passed_ ABSL_GUARDED_BY(mu_);
  int timeouts_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace ctrps

#ifdef CTRPS_SYNC_POINTS
#define TEST_SYNC_POINT(name) ::ctrps::SyncPoint::Get()->Process(name)
#define TEST_SYNC_POINT_CALLBACK(name, arg) ::ctrps::SyncPoint::Get()->Process(name, arg)
#else
#define TEST_SYNC_POINT(name)
#define TEST_SYNC_POINT_CALLBACK(name, arg)
#endif

#endif  // CTRPS_COMMON_SYNC_POINT_H_
