#include "worker/data/compress.h"

#include <zlib.h>
#include <zstd.h>

#include "glog/logging.h"

namespace ctrps {

std::string GzipBytes(std::string_view text) {
  z_stream z{};
  CHECK_EQ(deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
  // deflateBound leaves room for the gzip header and trailer: one call ends it.
  std::string out(deflateBound(&z, text.size()), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
  z.avail_in = static_cast<uInt>(text.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  CHECK_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

std::string ZstdBytes(std::string_view text) {
  std::string out(ZSTD_compressBound(text.size()), '\0');
  const size_t n = ZSTD_compress(out.data(), out.size(), text.data(), text.size(), 3);
  CHECK(!ZSTD_isError(n)) << ZSTD_getErrorName(n);
  out.resize(n);
  return out;
}

}  // namespace ctrps
