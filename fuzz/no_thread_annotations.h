// Force-included in the fuzz build (CTRPS_FUZZ) only: Abseil's thread-safety
// annotations as no-ops. clang evaluates them, and some name members of
// types only declared where they appear (SparseTable::Stripe), which it
// rejects; GCC, the normal build's compiler, ignores them.
#ifndef CTRPS_FUZZ_NO_THREAD_ANNOTATIONS_H_
#define CTRPS_FUZZ_NO_THREAD_ANNOTATIONS_H_

#include "absl/base/attributes.h"
#include "absl/base/config.h"
#include "absl/base/internal/thread_annotations.h"

#define ABSL_BASE_THREAD_ANNOTATIONS_H_
#define ABSL_ACQUIRED_AFTER(...)
#define ABSL_ACQUIRED_BEFORE(...)
#define ABSL_ASSERT_EXCLUSIVE_LOCK(...)
#define ABSL_ASSERT_SHARED_LOCK(...)
#define ABSL_EXCLUSIVE_LOCKS_REQUIRED(...)
#define ABSL_EXCLUSIVE_LOCK_FUNCTION(...)
#define ABSL_EXCLUSIVE_TRYLOCK_FUNCTION(...)
#define ABSL_GUARDED_BY(...)
#define ABSL_GUARDED_BY_FIXME(...)
#define ABSL_LOCKS_EXCLUDED(...)
#define ABSL_LOCK_RETURNED(...)
#define ABSL_PT_GUARDED_BY(...)
#define ABSL_SHARED_LOCKS_REQUIRED(...)
#define ABSL_SHARED_LOCK_FUNCTION(...)
#define ABSL_SHARED_TRYLOCK_FUNCTION(...)
#define ABSL_TS_FIXME(...)
#define ABSL_TS_UNCHECKED(...)
#define ABSL_UNLOCK_FUNCTION(...)
#define ABSL_LOCKABLE
#define ABSL_NO_THREAD_SAFETY_ANALYSIS
#define ABSL_SCOPED_LOCKABLE
#define ABSL_TS_UNCHECKED_READ(x) (x)

#endif  // CTRPS_FUZZ_NO_THREAD_ANNOTATIONS_H_
