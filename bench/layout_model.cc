// layout_model: pulls (dim 16) from three models of the in-memory rows, to
// weigh a new layout before building it into SparseTable:
//
//   index    the table's layout: per stripe a KeyIndex (key -> slot) and
//            rows of --row_bytes in a slab; a pull touches two random
//            pages, the index entry's and the row's;
//   buckets  rows inside their hash bucket's 4 KB page: a SpillFile per
//            stripe (a tag line of 16-bit fingerprints and the rows), the
//            layout the spill file already keeps; a pull touches one page.
//   inplace  rows hashed in place: per stripe one array of rows that is
//            itself the hash table (linear probing over rows, --row_load
//            full); a pull touches one page, but a key displaced from its
//            home row also reads the rows after it, which no prefetch
//            brought in.
//
// All serve requests of --keys keys the way the table does: blocks of
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
//   layout_model [--rows 10000000] [--rounds 14] [--row_bytes 160] [--keys 100000] [--dir /dev/shm]
//                [--row_load 0.7]
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "common/flags_util.h"
#include "common/hash.h"
#include "gflags/gflags.h"
#include "ps/huge_page_allocator.h"
#include "ps/key_index.h"
#include "ps/prefetch.h"
#include "ps/spill_file.h"

DEFINE_int64(rows, 10'000'000, "rows in the table");
DEFINE_int32(rounds, 14, "rounds of each model (the first two are warm-up)");
DEFINE_int32(row_bytes, 160, "bytes per row: 32 of metadata (key first), then the weights (160: dim 16 with Adagrad)");
DEFINE_int32(keys, 100'000, "keys per request");
DEFINE_string(dir, "/dev/shm", "directory for the buckets model's files (tmpfs: never written back)");
DEFINE_double(row_load, 0.7, "load of the inplace model: rows over row capacity (its memory is rows x row_bytes / this)");

namespace ctrps {
namespace {

constexpr int kStripes = 16;
constexpr int kDim = 16;
constexpr size_t kBlockKeys = 2048;
constexpr uint32_t kWindow = 256;

using Clock = std::chrono::steady_clock;

int StripeOf(uint64_t key) { return static_cast<int>((key * 0x9e3779b97f4a7c15ULL) >> 60); }

std::byte* Zeroed(size_t bytes) {
  auto* p = static_cast<std::byte*>(AllocateBlock(bytes));
  std::memset(p, 0, bytes);
  return p;
}

// A row as every model keeps it: the key first, and the key's low 32 bits
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
      // As the table: home lines first, the few keys passed on after.
      for (uint32_t j = w; j < we; ++j) slots[j] = index[s].FindInHome(keys[order[j]]);
      for (uint32_t j = w; j < we; ++j) {
        if (slots[j] == KeyIndex::kFurther) slots[j] = index[s].FindPastHome(keys[order[j]]);
      }
      for (uint32_t j = w; j < we; ++j) PrefetchBytes(rows[s] + size_t{slots[j]} * row_bytes, 32 + 4 * kDim);
      for (uint32_t j = w; j < we; ++j) {
        std::memcpy(out + size_t{order[j]} * kDim, rows[s] + size_t{slots[j]} * row_bytes + 32, 4 * kDim);
      }
    }
  }
};

// Rows in their hash bucket's page: the spill file's layout, so the model
// is a SpillFile per stripe (in --dir; on tmpfs by default, which the kernel
// never writes back).
struct BucketModel {
  size_t row_bytes;
  std::unique_ptr<SpillFile> files[kStripes];

  BucketModel(size_t row_bytes, const std::string& dir) : row_bytes(row_bytes) {
    for (int s = 0; s < kStripes; ++s) {
      auto file = SpillFile::Create(absl::StrFormat("%s/layout_model_%d_%02d", dir, getpid(), s), row_bytes);
      if (!file.ok()) {
        std::fprintf(stderr, "layout_model: %s\n", std::string(file.status().message()).c_str());
        std::exit(1);
      }
      files[s] = std::move(*file);
    }
  }
  void Add(uint64_t key) {
    std::vector<std::byte> row(row_bytes);
    Store(row.data(), key);
    if (absl::Status status = files[StripeOf(key)]->Put(row.data()); !status.ok()) {
      std::fprintf(stderr, "layout_model: %s\n", std::string(status.message()).c_str());
      std::exit(1);
    }
  }
  void PullGroup(int s, const uint64_t* keys, const uint32_t* order, uint32_t b, uint32_t e, float* out) const {
    SpillFile& f = *files[s];
    for (uint32_t w = b; w < e; w += kWindow) {
      const uint32_t we = std::min(e, w + kWindow);
      for (uint32_t j = w; j < we; ++j) f.Prefetch(keys[order[j]]);
      for (uint32_t j = w; j < we; ++j) f.PrefetchRow(keys[order[j]], 32 + 4 * kDim);
      for (uint32_t j = w; j < we; ++j) {
        std::memcpy(out + size_t{order[j]} * kDim, f.Find(keys[order[j]]) + 32, 4 * kDim);
      }
    }
  }
};

// Rows hashed in place. A row whose first 8 bytes are 0 is free (the
// model's keys are never 0).
struct InPlaceModel {
  size_t row_bytes;
  size_t capacity;  // rows per stripe
  std::byte* rows[kStripes];
  size_t used[kStripes] = {};

  InPlaceModel(int64_t n, size_t row_bytes, double load)
      : row_bytes(row_bytes), capacity(static_cast<size_t>(std::ceil(static_cast<double>(n) / kStripes / load))) {
    for (auto& r : rows) r = Zeroed(capacity * row_bytes);
  }
  size_t Home(uint64_t key) const {
    return static_cast<size_t>((static_cast<unsigned __int128>(Mix64(key)) * capacity) >> 64);
  }
  uint64_t KeyAt(int s, size_t i) const {
    uint64_t key;
    std::memcpy(&key, rows[s] + i * row_bytes, sizeof key);
    return key;
  }
  void Add(uint64_t key) {
    const int s = StripeOf(key);
    if (++used[s] == capacity) {  // one row always stays free, so a probe ends
      std::fprintf(stderr, "layout_model: stripe %d of the inplace model is full; lower --row_load\n", s);
      std::exit(1);
    }
    size_t i = Home(key);
    while (KeyAt(s, i) != 0) i = i + 1 == capacity ? 0 : i + 1;
    Store(rows[s] + i * row_bytes, key);
  }
  void PullGroup(int s, const uint64_t* keys, const uint32_t* order, uint32_t b, uint32_t e, float* out,
                 uint32_t* homes) const {
    for (uint32_t w = b; w < e; w += kWindow) {
      const uint32_t we = std::min(e, w + kWindow);
      for (uint32_t j = w; j < we; ++j) homes[j] = static_cast<uint32_t>(Home(keys[order[j]]));
      for (uint32_t j = w; j < we; ++j) PrefetchBytes(rows[s] + size_t{homes[j]} * row_bytes, 32 + 4 * kDim);
      for (uint32_t j = w; j < we; ++j) {
        size_t i = homes[j];
        for (uint64_t at; (at = KeyAt(s, i)) != keys[order[j]]; i = i + 1 == capacity ? 0 : i + 1) {
          if (at == 0) {
            std::fprintf(stderr, "layout_model: the inplace model has no row for a key it was given\n");
            std::exit(1);
          }
        }
        std::memcpy(out + size_t{order[j]} * kDim, rows[s] + i * row_bytes + 32, 4 * kDim);
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

double BucketBytes(const BucketModel& m) {
  double bytes = 0;
  for (const auto& f : m.files) bytes += static_cast<double>(f->file_bytes());
  return bytes;
}

int Main() {
  if (FLAGS_rows < kStripes * 1024 || FLAGS_row_bytes < 32 + 4 * kDim || FLAGS_row_bytes > 1024 ||
      FLAGS_row_bytes % 8 != 0 || FLAGS_keys < 1 || FLAGS_rounds < 3 ||
      !(FLAGS_row_load > 0.05 && FLAGS_row_load < 0.95)) {
    std::fprintf(stderr,
                 "layout_model: need --rows >= %d, --row_bytes a multiple of 8 in [%d, 1024], --keys >= 1, "
                 "--rounds >= 3, --row_load in (0.05, 0.95)\n",
                 kStripes * 1024, 32 + 4 * kDim);
    return 1;
  }
  const auto row_bytes = static_cast<size_t>(FLAGS_row_bytes);
  std::printf("building the three models of %lld rows of %zu bytes...\n", static_cast<long long>(FLAGS_rows),
              row_bytes);
  std::fflush(stdout);
  IndexModel index(FLAGS_rows, row_bytes);
  BucketModel buckets(row_bytes, FLAGS_dir);
  InPlaceModel inplace(FLAGS_rows, row_bytes, FLAGS_row_load);
  for (int64_t r = 0; r < FLAGS_rows; ++r) {
    index.Add(Mix64(r + 1));
    buckets.Add(Mix64(r + 1));
    inplace.Add(Mix64(r + 1));
  }
  std::printf("index: %d rows per stripe slab; buckets: %.0f MB of spill files; inplace: %.0f MB\n",
              static_cast<int>(FLAGS_rows / kStripes), BucketBytes(buckets) / 1048576.0,
              static_cast<double>(inplace.capacity * kStripes * row_bytes) / 1048576.0);

  std::mt19937_64 rng(1);
  constexpr int kRequests = 6;  // per model and round, each of fresh keys
  std::vector<std::vector<uint64_t>> requests(kRequests, std::vector<uint64_t>(FLAGS_keys));
  std::vector<float> out(size_t(FLAGS_keys) * kDim);
  std::vector<uint32_t> order(kBlockKeys), slots(kBlockKeys);
  constexpr int kModels = 3;
  constexpr const char* kNames[kModels] = {"index", "buckets", "inplace"};
  double total[kModels] = {};
  for (int round = 0; round < FLAGS_rounds; ++round) {
    double ns[kModels];
    for (int model = 0; model < kModels; ++model) {
      for (auto& keys : requests) {
        for (auto& k : keys) k = Mix64(rng() % FLAGS_rows + 1);
      }
      const auto t = Clock::now();
      for (const auto& keys : requests) {
        if (model == 0) {
          Request(keys, out.data(), order, [&](int s, const uint64_t* k, const uint32_t* o, uint32_t b, uint32_t e,
                                               float* dst) { index.PullGroup(s, k, o, b, e, dst, slots.data()); });
        } else if (model == 1) {
          Request(keys, out.data(), order, [&](int s, const uint64_t* k, const uint32_t* o, uint32_t b, uint32_t e,
                                               float* dst) { buckets.PullGroup(s, k, o, b, e, dst); });
        } else {
          Request(keys, out.data(), order, [&](int s, const uint64_t* k, const uint32_t* o, uint32_t b, uint32_t e,
                                               float* dst) { inplace.PullGroup(s, k, o, b, e, dst, slots.data()); });
        }
      }
      ns[model] = std::chrono::duration<double, std::nano>(Clock::now() - t).count() / (kRequests * FLAGS_keys);
      if (round >= 2) total[model] += ns[model];
      const std::vector<uint64_t>& keys = requests.back();  // what `out` holds now
      for (size_t i = 0; i < keys.size(); ++i) {
        uint32_t low;
        std::memcpy(&low, &out[i * kDim], sizeof low);
        if (low != static_cast<uint32_t>(keys[i])) {
          std::fprintf(stderr, "layout_model: the %s model pulled the wrong row for key %zu\n", kNames[model], i);
          return 1;
        }
      }
    }
    std::printf("round %2d: index %6.1f ns/key, buckets %6.1f ns/key, inplace %6.1f ns/key\n", round, ns[0], ns[1],
                ns[2]);
    std::fflush(stdout);
  }
  const int measured = FLAGS_rounds - 2;
  std::printf("mean over %d rounds: index %.1f ns/key, buckets %.1f ns/key (%.2fx), inplace %.1f ns/key (%.2fx)\n",
              measured, total[0] / measured, total[1] / measured, total[0] / total[1], total[2] / measured,
              total[0] / total[2]);
  return 0;
}

}  // namespace
}  // namespace ctrps

int main(int argc, char** argv) {
  ctrps::ParseFlags(&argc, &argv,
      "pulls from a model of the table's in-memory layout, of rows in their hash bucket's page and of rows\n"
      "  hashed in place\n"
      "  layout_model [--rows 10000000] [--rounds 14] [--row_bytes 160] [--keys 100000] [--dir /dev/shm]\n"
      "               [--row_load 0.7]");
  return ctrps::Main();
}
