// Whole-buffer compression in the formats LineReader reads (gzip, zstd), for
// writing test and benchmark inputs.
#ifndef CTRPS_WORKER_DATA_COMPRESS_H_
#define CTRPS_WORKER_DATA_COMPRESS_H_

#include <string>
#include <string_view>

namespace ctrps {

// `text` as one gzip member (level 6), as `gzip -6` writes it.
std::string GzipBytes(std::string_view text);

// `text` as one zstd frame (level 3), as `zstd -3` writes it.
std::string ZstdBytes(std::string_view text);

}  // namespace ctrps

#endif  // CTRPS_WORKER_DATA_COMPRESS_H_
