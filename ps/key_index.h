// Key -> slot index of a table stripe. A key's home is one cache line of
// kPerLine (key, slot) entries, compared all at once; a full line passes new
// keys on to the next one and counts them, so a lookup reads a second line
// only when its home has passed keys on. A lookup is thus one cache miss,
// with no branch per probe and no pointer chase. Lines are a power of two;
// the load is kept at or under 1/2 of the entries (at most 2.5 keys a line
// on average) by default; an index of rows on disk, where memory matters
// more than a second line read, may be filled further and grow by less
// (the constructor's arguments). At load 1/2 about 2.6% of the keys sit past their home line
// and 5% of the lines passed some on; at 0.48 (a 10M-row table's stripes)
// 2.2% and 4% (KeyIndexTest.FewLookupsReadPastTheirHomeLine prints them).
// ShrinkIfSparse gives memory back after most keys left.
//
// Why lines rather than linear probing over single 16-byte buckets: a probe
// whose run crossed into the next line missed on it unprefetched, and each
// further probe was a mispredicted branch. Pushes into a 10M-row table ran
// 0.8x when the probe load went from 0.3 to 0.6. A line holds up to 2.5
// keys where four buckets held 2, so at the growth point the lines take
// 0.8x the bytes a key; the 10M-row table's index happens to fall in half
// (32 to 16 MiB a stripe), and pushes into it run faster
// (docs/BENCHMARKS.md, "What each mechanism buys").
//
// Not thread-safe; the stripe's mutex guards it.
#ifndef CTRPS_PS_KEY_INDEX_H_
#define CTRPS_PS_KEY_INDEX_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "common/hash.h"
#include "ps/huge_page_allocator.h"
#include "ps/prefetch.h"

namespace ctrps {

class KeyIndex {
 public:
  // Slots are below kNone - 255; the values above are the index's answers.
  static constexpr uint32_t kNone = ~0u;
  static constexpr int kPerLine = 5;
  static constexpr size_t kMinLines = 4;

  // Grows when an insert would take the load past max_load_percent of the
  // entries, to growth_percent of its lines (> 100). Line counts need not
  // be powers of two (HomeOf).
  explicit KeyIndex(int max_load_percent = 50, int growth_percent = 200)
      : max_load_percent_(max_load_percent), growth_percent_(growth_percent) {
    Rehash(kMinLines);
  }
  ~KeyIndex() { FreeBlock(lines_, bytes()); }
  KeyIndex(const KeyIndex&) = delete;
  KeyIndex& operator=(const KeyIndex&) = delete;

  size_t size() const { return size_; }
  // Entries, full or not.
  size_t capacity() const { return lines_count_ * kPerLine; }
  size_t bytes() const { return lines_count_ * sizeof(Line); }

  void Prefetch(uint64_t key) const { PrefetchLine(&lines_[HomeOf(key)]); }

  uint32_t Find(uint64_t key) const { return SlotAt(Locate(key, HomeOf(key), 0)); }

  // Find in two halves, for a caller that looks up many keys whose home
  // lines it prefetched: FindInHome reads only the home line and returns
  // the slot, kNone, or kFurther when the key may be in a later line (the
  // home passed keys on). Then it has prefetched the next line, and
  // FindPastHome, called later, finishes the lookup, so that the rare
  // lookup that needs a second line does not stall the others on it.
  static constexpr uint32_t kFurther = kNone - 2;
  uint32_t FindInHome(uint64_t key) const {
    const size_t home = HomeOf(key);
    const Line& line = lines_[home];
    if (int at = line.Match(key); at >= 0) return line.slots[at];
    if (line.passed == 0) return kNone;
    PrefetchLine(&lines_[Next(home)]);
    return kFurther;
  }
  uint32_t FindPastHome(uint64_t key) const { return SlotAt(Locate(key, Next(HomeOf(key)), 1)); }

  // Sets the slot of `key`, inserting it if absent.
  void Set(uint64_t key, uint32_t slot) {
    if (const Place p = Locate(key, HomeOf(key), 0); p.at >= 0) {
      lines_[p.line].slots[p.at] = slot;
      return;
    }
    if ((size_ + 1) * 100 > capacity() * max_load_percent_) {
      Rehash(std::max(lines_count_ + 1, lines_count_ * growth_percent_ / 100));
    }
    Insert(key, slot);
  }

  // Removes `key` if present.
  void Erase(uint64_t key) {
    const size_t home = HomeOf(key);
    const Place p = Locate(key, home, 0);
    if (p.at < 0) return;
    for (size_t i = home; i != p.line; i = Next(i)) {
      if (lines_[i].passed != kPassedSaturated) --lines_[i].passed;
    }
    Line& line = lines_[p.line];
    const int last = line.used - 1;  // the line's last entry fills the hole
    line.keys[p.at] = line.keys[last];
    line.slots[p.at] = line.slots[last];
    --line.used;
    --size_;
  }

  // Halves the capacity while the load is under 1/8 (not below the
  // minimum). Growth happens at a load of 1/2 or more, so the two never
  // alternate. Returns whether it shrank.
  bool ShrinkIfSparse() {
    size_t lines = lines_count_;
    while (lines > kMinLines && size_ * 8 < lines * kPerLine) lines /= 2;
    if (lines == lines_count_) return false;
    Rehash(lines);
    return true;
  }

 private:
  // Saturated counts of keys passed on are never decremented: lookups
  // through such a line go on past it until a rehash recounts.
  static constexpr uint16_t kPassedSaturated = 0xffff;

  struct alignas(64) Line {
    uint64_t keys[kPerLine];
    uint32_t slots[kPerLine];
    uint8_t used;  // entries [0, used) hold keys
    uint8_t unused;
    uint16_t passed;  // keys whose home is this line or before it, kept in a later line

    // The entry holding `key`, or -1.
    int Match(uint64_t key) const {
#if defined(__AVX2__)
      // Entries 0-3, then 4 with the first slots behind it, which the mask
      // of used entries drops.
      const __m256i k = _mm256_set1_epi64x(static_cast<long long>(key));
      const auto* half = reinterpret_cast<const __m256i*>(this);
      const __m256i lo = _mm256_load_si256(half);
      const __m256i hi = _mm256_load_si256(half + 1);
      const unsigned eq =
          static_cast<unsigned>(
              _mm256_movemask_pd(_mm256_castsi256_pd(_mm256_cmpeq_epi64(lo, k)))) |
          static_cast<unsigned>(_mm256_movemask_pd(_mm256_castsi256_pd(_mm256_cmpeq_epi64(hi, k))))
              << 4;
      const unsigned hits = eq & ((1u << used) - 1);
      return hits == 0 ? -1 : __builtin_ctz(hits);
#else
      for (int e = 0; e < used; ++e) {
        if (keys[e] == key) return e;
      }
      return -1;
#endif
    }
  };
  static_assert(sizeof(Line) == 64);
  // Match's second half: key 4 in lane 0, then the slots and counts, which
  // the mask of used entries (at most 5) drops.
  static_assert(offsetof(Line, keys) == 0 && offsetof(Line, slots) == 40);

  // A mask while the line count is a power of two (the default growth
  // keeps it one), a multiply-high otherwise: the mask is off the lookup's
  // critical path to its line.
  size_t HomeOf(uint64_t key) const {
    const uint64_t h = Mix64(key);
    if (pow2_) return h & (lines_count_ - 1);
    return static_cast<size_t>((static_cast<unsigned __int128>(h) * lines_count_) >> 64);
  }
  size_t Next(size_t line) const { return line + 1 == lines_count_ ? 0 : line + 1; }

  // Where `key` is: its line and entry, or at < 0. The walk starts at line
  // `first`, `visited` lines past the key's home, and reads on while the
  // line it is on passed keys on, visiting each line at most once: erases
  // can leave every line counting keys passed on while all have room.
  struct Place {
    size_t line;
    int at;
  };
  Place Locate(uint64_t key, size_t first, size_t visited) const {
    for (size_t i = first; visited < lines_count_; i = Next(i), ++visited) {
      if (int at = lines_[i].Match(key); at >= 0) return {i, at};
      if (lines_[i].passed == 0) break;
    }
    return {0, -1};
  }
  uint32_t SlotAt(Place p) const { return p.at < 0 ? kNone : lines_[p.line].slots[p.at]; }

  // `key` is absent and there is room.
  void Insert(uint64_t key, uint32_t slot) {
    size_t i = HomeOf(key);
    while (lines_[i].used == kPerLine) {
      if (lines_[i].passed != kPassedSaturated) ++lines_[i].passed;
      i = Next(i);
    }
    Line& line = lines_[i];
    line.keys[line.used] = key;
    line.slots[line.used] = slot;
    ++line.used;
    ++size_;
  }

  void Rehash(size_t lines) {
    Line* old = lines_;
    const size_t old_lines = old == nullptr ? 0 : lines_count_;
    lines_ = static_cast<Line*>(AllocateBlock(lines * sizeof(Line)));
    std::memset(static_cast<void*>(lines_), 0, lines * sizeof(Line));
    lines_count_ = lines;
    pow2_ = (lines & (lines - 1)) == 0;
    size_ = 0;
    for (size_t l = 0; l < old_lines; ++l) {
      for (int e = 0; e < old[l].used; ++e) Insert(old[l].keys[e], old[l].slots[e]);
    }
    FreeBlock(old, old_lines * sizeof(Line));
  }

  const int max_load_percent_;
  const int growth_percent_;
  Line* lines_ = nullptr;
  size_t lines_count_ = 0;
  bool pow2_ = true;
  size_t size_ = 0;
};

}  // namespace ctrps

#endif  // CTRPS_PS_KEY_INDEX_H_
