// layout_model: pulls (dim 16) from two models of the in-memory rows, to
// weigh a new layout before building it into SparseTable:
//
//   index    the table's layout: per stripe a KeyIndex (key -> slot) and
//            rows of --row_bytes in a slab; a pull touches two random
//            pages, the index entry's and the row's;
//   buckets  rows inside their hash bucket's 4 KB page, as the spill file
//            keeps them: a tag line (one 16-bit fingerprint per row) and
//            the rows; a pull touches one page.
//
// Both serve requests of --keys keys the way the table does: blocks of
// 2,048 keys grouped by stripe, each group prefetched a window of 256 at a
// time in loops of prefetches alone (for the buckets: the tag lines, then
// the matching rows). The models run in turn in one process, --rounds each,
// and print ns per key; the first two rounds are warm-up.
//
// The index model serves each window's lookups, then its rows; the table
// looks up every window of a stripe group before reading rows, the same
// order for groups of up to 256 keys (blocks of 2,048 over 16 stripes make
// groups of about 128). Its rows are in one slab per stripe, the table's in
// chunks that double; with windows of prefetches the two ran alike.
//
//   layout_model [--rows 10000000] [--rounds 14] [--row_bytes 160] [--keys 100000]
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "common/hash.h"
#include "gflags/gflags.h"
#include "ps/huge_page_allocator.h"
#include "ps/key_index.h"
#include "ps/prefetch.h"

DEFINE_int64(rows, 10'000'000, "rows in the table");
DEFINE_int32(rounds, 14, "rounds of each model (the first two are warm-up)");
DEFINE_int32(row_bytes, 160, "bytes per row: 32 of metadata (key first), then the weights (160: dim 16 with Adagrad)");
DEFINE_int32(keys, 100'000, "keys per request");

namespace ctrps {
namespace {

constexpr int kStripes = 16;
constexpr int kDim = 16;
constexpr size_t kBlockKeys = 2048;
constexpr uint32_t kWindow = 256;
constexpr size_t kBucketBytes = 4096;
constexpr size_t kTagBytes = 64;
constexpr double kBucketLoad = 0.8;

using Clock = std::chrono::steady_clock;

int StripeOf(uint64_t key) { return static_cast<int>((key * 0x9e3779b97f4a7c15ULL) >> 60); }

std::byte* Zeroed(size_t bytes) {
  auto* p = static_cast<std::byte*>(AllocateBlock(bytes));
  std::memset(p, 0, bytes);
  return p;
}

// A row as both models keep it: the key first, and the key's low 32 bits
// as the first weight, so that a pull can be checked.
void Store(std::byte* row, uint64_t key) {
  std::memcpy(row, &key, sizeof key);
  const auto low = static_cast<uint32_t>(key);
  std::memcpy(row + 32, &low, sizeof low);
}

// The table's layout.
struct IndexModel {
  size_t row_bytes;
  KeyIndex index[kStripes];
  std::byte* rows[kStripes];
  uint32_t used[kStripes] = {};

  IndexModel(int64_t n, size_t row_bytes) : row_bytes(row_bytes) {
    for (auto& r : rows) r = Zeroed((n / kStripes + n / 100 + 1024) * row_bytes);
  }
  void Add(uint64_t key) {
    const int s = StripeOf(key);
    const uint32_t slot = used[s]++;
    index[s].Set(key, slot);
    Store(rows[s] + size_t{slot} * row_bytes, key);
  }
  // Keys [b, e) of `order`, all of stripe s.
  void PullGroup(int s, const uint64_t* keys, const uint32_t* order, uint32_t b, uint32_t e, float* out,
                 uint32_t* slots) const {
    for (uint32_t w = b; w < e; w += kWindow) {
      const uint32_t we = std::min(e, w + kWindow);
      for (uint32_t j = w; j < we; ++j) index[s].Prefetch(keys[order[j]]);
      for (uint32_t j = w; j < we; ++j) slots[j] = index[s].Find(keys[order[j]]);
      for (uint32_t j = w; j < we; ++j) PrefetchBytes(rows[s] + size_t{slots[j]} * row_bytes, 32 + 4 * kDim);
      for (uint32_t j = w; j < we; ++j) {
        std::memcpy(out + size_t{order[j]} * kDim, rows[s] + size_t{slots[j]} * row_bytes + 32, 4 * kDim);
      }
    }
  }
};

// Rows in their hash bucket's page.
struct BucketModel {
  size_t row_bytes;
  int rows_per_bucket;
  uint64_t tag_mask;  // the bits of the tag compare's mask that are rows
  size_t buckets;     // per stripe
  std::byte* base[kStripes];

  BucketModel(int64_t n, size_t row_bytes)
      : row_bytes(row_bytes),
        rows_per_bucket(static_cast<int>(std::min<size_t>(32, (kBucketBytes - kTagBytes) / row_bytes))),
        tag_mask(rows_per_bucket == 32 ? ~uint64_t{0} : (uint64_t{1} << (2 * rows_per_bucket)) - 1) {
    buckets = static_cast<size_t>(n / kStripes / (rows_per_bucket * kBucketLoad)) + 1;
    for (auto& b : base) b = Zeroed(buckets * kBucketBytes);
  }
  static uint64_t Hash(uint64_t key) { return Mix64(key ^ 0x6a09e667f3bcc908ULL); }
  static uint16_t Tag(uint64_t h) { return static_cast<uint16_t>(h) < 2 ? static_cast<uint16_t>(h) + 2 : static_cast<uint16_t>(h); }
  std::byte* Bucket(int s, uint64_t h) const {
    return base[s] + static_cast<size_t>((static_cast<unsigned __int128>(h) * buckets) >> 64) * kBucketBytes;
  }
  uint16_t* Tags(std::byte* bucket) const { return reinterpret_cast<uint16_t*>(bucket); }
  std::byte* Row(std::byte* bucket, int i) const { return bucket + kTagBytes + size_t(i) * row_bytes; }
  // Next bucket of a probe (linear, wrapping).
  std::byte* Next(int s, std::byte* bucket) const {
    bucket += kBucketBytes;
    return bucket == base[s] + buckets * kBucketBytes ? base[s] : bucket;
  }
  void Add(uint64_t key) {
    const int s = StripeOf(key);
    const uint64_t h = Hash(key);
    std::byte* bucket = Bucket(s, h);
    for (size_t probed = 0;; ++probed, bucket = Next(s, bucket)) {
      if (probed == buckets) {  // cannot happen at load 0.8; not a hang if it did
        std::fprintf(stderr, "layout_model: stripe %d is full\n", s);
        std::exit(1);
      }
      for (int i = 0; i < rows_per_bucket; ++i) {
        if (Tags(bucket)[i] == 0) {
          Tags(bucket)[i] = Tag(h);
          Store(Row(bucket, i), key);
          return;
        }
      }
    }
  }
  // The first row of `bucket` whose tag matches, or null: the tag line
  // compared 16 tags at a time.
  std::byte* Candidate(std::byte* bucket, uint16_t tag) const {
    const __m256i want = _mm256_set1_epi16(static_cast<int16_t>(tag));
    const auto* line = reinterpret_cast<const __m256i*>(bucket);
    const uint64_t low = static_cast<uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi16(_mm256_loadu_si256(line), want)));
    const uint64_t high =
        static_cast<uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi16(_mm256_loadu_si256(line + 1), want)));
    const uint64_t match = (low | high << 32) & tag_mask;
    return match != 0 ? Row(bucket, __builtin_ctzll(match) / 2) : nullptr;
  }
  std::byte* Find(int s, uint64_t key) const {
    const uint64_t h = Hash(key);
    const uint16_t tag = Tag(h);
    for (std::byte* bucket = Bucket(s, h);; bucket = Next(s, bucket)) {
      bool empty_seen = false;
      for (int i = 0; i < rows_per_bucket; ++i) {
        const uint16_t t = Tags(bucket)[i];
        if (t == tag && std::memcmp(Row(bucket, i), &key, sizeof key) == 0) return Row(bucket, i);
        empty_seen |= t == 0;
      }
      if (empty_seen) return nullptr;
    }
  }
  void PullGroup(int s, const uint64_t* keys, const uint32_t* order, uint32_t b, uint32_t e, float* out,
                 std::byte** rows) const {
    for (uint32_t w = b; w < e; w += kWindow) {
      const uint32_t we = std::min(e, w + kWindow);
      for (uint32_t j = w; j < we; ++j) PrefetchLine(Bucket(s, Hash(keys[order[j]])));
      for (uint32_t j = w; j < we; ++j) {
        const uint64_t h = Hash(keys[order[j]]);
        rows[j] = Candidate(Bucket(s, h), Tag(h));
        if (rows[j] != nullptr) PrefetchBytes(rows[j], 32 + 4 * kDim);
      }
      for (uint32_t j = w; j < we; ++j) {
        const uint64_t key = keys[order[j]];
        std::byte* row = rows[j];
        if (row == nullptr || std::memcmp(row, &key, sizeof key) != 0) row = Find(s, key);
        std::memcpy(out + size_t{order[j]} * kDim, row + 32, 4 * kDim);
      }
    }
  }
};

// Groups each block of `keys` by stripe (a counting sort, as KeyGroups does)
// and calls pull(stripe, block keys, order, b, e, block out).
template <typename PullGroup>
void Request(const std::vector<uint64_t>& keys, float* out, std::vector<uint32_t>& order, PullGroup pull) {
  for (size_t at = 0; at < keys.size(); at += kBlockKeys) {
    const size_t n = std::min(kBlockKeys, keys.size() - at);
    const uint64_t* k = keys.data() + at;
    uint32_t begin[kStripes + 1] = {};
    for (size_t i = 0; i < n; ++i) ++begin[StripeOf(k[i]) + 1];
    for (int s = 0; s < kStripes; ++s) begin[s + 1] += begin[s];
    uint32_t next[kStripes];
    std::copy(begin, begin + kStripes, next);
    for (uint32_t i = 0; i < n; ++i) order[next[StripeOf(k[i])]++] = i;
    for (int s = 0; s < kStripes; ++s) {
      if (begin[s] < begin[s + 1]) pull(s, k, order.data(), begin[s], begin[s + 1], out + at * kDim);
    }
  }
}

int Main() {
  if (FLAGS_rows < kStripes * 1024 || FLAGS_row_bytes < 32 + 4 * kDim || FLAGS_row_bytes > 1024 || FLAGS_keys < 1 ||
      FLAGS_rounds < 3) {
    std::fprintf(stderr, "layout_model: need --rows >= %d, --row_bytes in [%d, 1024], --keys >= 1, --rounds >= 3\n",
                 kStripes * 1024, 32 + 4 * kDim);
    return 1;
  }
  const auto row_bytes = static_cast<size_t>(FLAGS_row_bytes);
  std::printf("building both models of %lld rows of %zu bytes...\n", static_cast<long long>(FLAGS_rows), row_bytes);
  std::fflush(stdout);
  IndexModel index(FLAGS_rows, row_bytes);
  BucketModel buckets(FLAGS_rows, row_bytes);
  for (int64_t r = 0; r < FLAGS_rows; ++r) {
    index.Add(Mix64(r + 1));
    buckets.Add(Mix64(r + 1));
  }
  std::printf("index: %d rows per stripe slab; buckets: %d rows per 4 KB bucket at load %.1f\n",
              static_cast<int>(FLAGS_rows / kStripes), buckets.rows_per_bucket, kBucketLoad);

  std::mt19937_64 rng(1);
  constexpr int kRequests = 6;  // per model and round, each of fresh keys
  std::vector<std::vector<uint64_t>> requests(kRequests, std::vector<uint64_t>(FLAGS_keys));
  std::vector<float> out(size_t(FLAGS_keys) * kDim);
  std::vector<uint32_t> order(kBlockKeys), slots(kBlockKeys);
  std::vector<std::byte*> rows(kBlockKeys);
  double total[2] = {0, 0};
  for (int round = 0; round < FLAGS_rounds; ++round) {
    double ns[2];
    for (int model = 0; model < 2; ++model) {
      for (auto& keys : requests) {
        for (auto& k : keys) k = Mix64(rng() % FLAGS_rows + 1);
      }
      const auto t = Clock::now();
      for (const auto& keys : requests) {
        if (model == 0) {
          Request(keys, out.data(), order, [&](int s, const uint64_t* k, const uint32_t* o, uint32_t b, uint32_t e,
                                               float* dst) { index.PullGroup(s, k, o, b, e, dst, slots.data()); });
        } else {
          Request(keys, out.data(), order, [&](int s, const uint64_t* k, const uint32_t* o, uint32_t b, uint32_t e,
                                               float* dst) { buckets.PullGroup(s, k, o, b, e, dst, rows.data()); });
        }
      }
      ns[model] = std::chrono::duration<double, std::nano>(Clock::now() - t).count() / (kRequests * FLAGS_keys);
      if (round >= 2) total[model] += ns[model];
      const std::vector<uint64_t>& keys = requests.back();  // what `out` holds now
      for (size_t i = 0; i < keys.size(); ++i) {
        uint32_t low;
        std::memcpy(&low, &out[i * kDim], sizeof low);
        if (low != static_cast<uint32_t>(keys[i])) {
          std::fprintf(stderr, "layout_model: the %s model pulled the wrong row for key %zu\n",
                       model == 0 ? "index" : "buckets", i);
          return 1;
        }
      }
    }
    std::printf("round %2d: index %6.1f ns/key, buckets %6.1f ns/key\n", round, ns[0], ns[1]);
    std::fflush(stdout);
  }
  const int measured = FLAGS_rounds - 2;
  std::printf("mean over %d rounds: index %.1f ns/key, buckets %.1f ns/key (%.2fx)\n", measured,
              total[0] / measured, total[1] / measured, total[0] / total[1]);
  return 0;
}

}  // namespace
}  // namespace ctrps

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "pulls from a model of the table's in-memory layout and of rows in their hash bucket's page\n"
      "  layout_model [--rows 10000000] [--rounds 14] [--row_bytes 160] [--keys 100000]");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  return ctrps::Main();
}
