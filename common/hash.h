// Hashing used across the system. Keys, shards and row initialisation all
// depend on these functions staying exactly as they are: changing one changes
// every key in every checkpoint.
#ifndef CTRPS_COMMON_HASH_H_
#define CTRPS_COMMON_HASH_H_

#include <cstdint>
#include <cstring>
#include <string_view>

namespace ctrps {

// SplitMix64 finaliser: a bijective, well-mixed 64-bit -> 64-bit map.
inline uint64_t Mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// FNV-1a over bytes, then mixed. Fast enough for short feature values and
// stable across platforms (no std::hash).
inline uint64_t HashBytes(std::string_view s, uint64_t seed = 0) {
  uint64_t h = 0xcbf29ce484222325ULL ^ Mix64(seed);
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return Mix64(h);
}

// The 64-bit key of a raw feature value in a field (or hash group).
// `field_hash` is HashBytes(field name), computed once per field.
inline uint64_t FeatureKey(uint64_t field_hash, std::string_view value) {
  return HashBytes(value, field_hash);
}
inline uint64_t FeatureKey(uint64_t field_hash, int64_t value) {
  return Mix64(field_hash ^ Mix64(static_cast<uint64_t>(value)));
}

// The server that owns `key` among `num_shards`. Keys are mixed again so that
// keys made by another scheme (sequential ids) still spread evenly.
inline uint32_t ShardOf(uint64_t key, uint32_t num_shards) {
  return static_cast<uint32_t>(
      (static_cast<unsigned __int128>(Mix64(key ^ 0x5bd1e9955bd1e995ULL)) * num_shards) >> 64);
}

}  // namespace ctrps

#endif  // CTRPS_COMMON_HASH_H_
