#include "common/sync_point.h"

namespace ctrps {

SyncPoint* SyncPoint::Get() {
  static SyncPoint* const instance = new SyncPoint();
  return instance;
}

void SyncPoint::LoadDependency(const std::vector<Dependency>& dependencies) {
  absl::MutexLock lock(&mu_);
  predecessors_.clear();
  for (const Dependency& d : dependencies) predecessors_[d.successor].push_back(d.predecessor);
}

void SyncPoint::SetCallBack(const std::string& point, std::function<void(void*)> callback) {
  absl::MutexLock lock(&mu_);
  callbacks_[point] = std::move(callback);
}

void SyncPoint::EnableProcessing() {
  absl::MutexLock lock(&mu_);
  enabled_ = true;
}

void SyncPoint::DisableProcessing() {
  absl::MutexLock lock(&mu_);
  enabled_ = false;
}

void SyncPoint::ClearAll() {
  absl::MutexLock lock(&mu_);
  predecessors_.clear();
  callbacks_.clear();
  passed_.clear();
  timeouts_ = 0;
}

bool SyncPoint::Passed(const std::string& point) {
  absl::MutexLock lock(&mu_);
  return passed_.contains(point);
}

bool SyncPoint::WaitFor(const std::string& point, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto passed = [this, &point]()
                    ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return passed_.contains(point); };
  return mu_.AwaitWithTimeout(absl::Condition(&passed), timeout);
}

int SyncPoint::timeouts() {
  absl::MutexLock lock(&mu_);
  return timeouts_;
}

void SyncPoint::set_wait_limit(absl::Duration limit) {
  absl::MutexLock lock(&mu_);
  wait_limit_ = limit;
}

void SyncPoint::Process(const std::string& point, void* arg) {
  std::function<void(void*)> callback;
  {
    absl::MutexLock lock(&mu_);
    if (!enabled_) return;
    auto it = predecessors_.find(point);
    if (it != predecessors_.end()) {
      const std::vector<std::string>& before = it->second;
      auto ready = [this, &before]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        for (const std::string& p : before) {
          if (!passed_.contains(p)) return false;
        }
        return true;
      };
      if (!mu_.AwaitWithTimeout(absl::Condition(&ready), wait_limit_)) ++timeouts_;
    }
    if (auto cb = callbacks_.find(point); cb != callbacks_.end()) callback = cb->second;
  }
  if (callback) callback(arg);
  absl::MutexLock lock(&mu_);
  passed_.insert(point);
}

}  // namespace ctrps
