// Key -> slot index of a table stripe: open addressing with linear probing
// over one array of (key, slot) buckets, so a lookup is one cache miss and no
// pointer chase. Capacity is a power of two, load kept at or under 1/2;
// ShrinkIfSparse gives memory back after most keys left.
// Deletion shifts later buckets back (no tombstones). Not thread-safe; the
// stripe's mutex guards it.
#ifndef CTRPS_PS_KEY_INDEX_H_
#define CTRPS_PS_KEY_INDEX_H_

#include <cstdint>
#include <cstring>
#include <utility>

#include "common/hash.h"
#include "ps/huge_page_allocator.h"
#include "ps/prefetch.h"

namespace ctrps {

class KeyIndex {
 public:
  static constexpr uint32_t kNone = ~0u;
  static constexpr size_t kMinCapacity = 16;

  KeyIndex() { Rehash(kMinCapacity); }
  ~KeyIndex() { FreeBlock(buckets_, capacity_ * sizeof(Bucket)); }
  KeyIndex(const KeyIndex&) = delete;
  KeyIndex& operator=(const KeyIndex&) = delete;

  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }
  size_t bytes() const { return capacity_ * sizeof(Bucket); }

  void Prefetch(uint64_t key) const { PrefetchLine(&buckets_[Home(key)]); }

  uint32_t Find(uint64_t key) const {
    for (size_t i = Home(key);; i = (i + 1) & mask_) {
      const Bucket& b = buckets_[i];
      if (b.slot == kNone) return kNone;
      if (b.key == key) return b.slot;
    }
  }

  // Sets the slot of `key`, inserting it if absent.
  void Set(uint64_t key, uint32_t slot) {
    if ((size_ + 1) * 2 > capacity_) Rehash(capacity_ * 2);
    for (size_t i = Home(key);; i = (i + 1) & mask_) {
      Bucket& b = buckets_[i];
      if (b.slot == kNone) {
        b = {key, slot};
        ++size_;
        return;
      }
      if (b.key == key) {
        b.slot = slot;
        return;
      }
    }
  }

  // Removes `key` if present.
  void Erase(uint64_t key) {
    size_t i = Home(key);
    while (true) {
      if (buckets_[i].slot == kNone) return;
      if (buckets_[i].key == key) break;
      i = (i + 1) & mask_;
    }
    // Backward-shift: pull later entries of the run into the hole when their
    // home position allows it.
    size_t hole = i;
    for (size_t j = (i + 1) & mask_; buckets_[j].slot != kNone; j = (j + 1) & mask_) {
      size_t home = Home(buckets_[j].key);
      if (((j - home) & mask_) >= ((j - hole) & mask_)) {
        buckets_[hole] = buckets_[j];
        hole = j;
      }
    }
    buckets_[hole].slot = kNone;
    --size_;
  }

  // Halves the capacity while the load is under 1/8 (not below the
  // minimum). Growth doubles at 1/2, so the two never alternate. Returns
  // whether it shrank.
  bool ShrinkIfSparse() {
    size_t capacity = capacity_;
    while (capacity > kMinCapacity && size_ * 8 < capacity) capacity /= 2;
    if (capacity == capacity_) return false;
    Rehash(capacity);
    return true;
  }

 private:
  struct Bucket {
    uint64_t key;
    uint32_t slot;
  };

  size_t Home(uint64_t key) const { return Mix64(key) & mask_; }

  void Rehash(size_t capacity) {
    Bucket* old = buckets_;
    size_t old_capacity = capacity_;
    buckets_ = static_cast<Bucket*>(AllocateBlock(capacity * sizeof(Bucket)));
    for (size_t i = 0; i < capacity; ++i) buckets_[i].slot = kNone;
    capacity_ = capacity;
    mask_ = capacity - 1;
    size_ = 0;
    for (size_t i = 0; i < old_capacity; ++i) {
      if (old[i].slot != kNone) Set(old[i].key, old[i].slot);
    }
    FreeBlock(old, old_capacity * sizeof(Bucket));
  }

  Bucket* buckets_ = nullptr;
  size_t capacity_ = 0;
  size_t mask_ = 0;
  size_t size_ = 0;
};

}  // namespace ctrps

#endif  // CTRPS_PS_KEY_INDEX_H_
