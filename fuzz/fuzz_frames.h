// The byte layout the request fuzzer reads a ZeroMQ multipart request from:
// frames one after another, each a little-endian u32 length and its bytes.
// A length past the input's end takes what is left.
#ifndef CTRPS_FUZZ_FUZZ_FRAMES_H_
#define CTRPS_FUZZ_FUZZ_FRAMES_H_

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace ctrps {

inline std::vector<std::string> SplitFrames(const uint8_t* data, size_t size) {
  std::vector<std::string> frames;
  size_t at = 0;
  while (at + 4 <= size && frames.size() < 8) {
    uint32_t len;
    std::memcpy(&len, data + at, 4);
    at += 4;
    const size_t take = std::min<size_t>(len, size - at);
    frames.emplace_back(reinterpret_cast<const char*>(data + at), take);
    at += take;
  }
  return frames;
}

inline std::string JoinFrames(const std::vector<std::string>& frames) {
  std::string out;
  for (const std::string& f : frames) {
    const uint32_t len = static_cast<uint32_t>(f.size());
    out.append(reinterpret_cast<const char*>(&len), 4);
    out += f;
  }
  return out;
}

// The fixed setting of the request fuzzer, shared with its seed writer.
inline constexpr char kFuzzRoot[] = "/tmp/ctrps-fuzz-request";
inline constexpr char kFuzzMember[] = "fuzz-member-secret-0123456789abc";
inline constexpr char kFuzzChief[] = "fuzz-chief-secret-0123456789abcd";

}  // namespace ctrps

#endif  // CTRPS_FUZZ_FUZZ_FRAMES_H_
