#include "edge/cloudsync/gzip.h"

#include <zlib.h>

#include <algorithm>
#include <limits>

namespace edge::cloudsync {
namespace {

// windowBits 15 plus 16 selects the gzip wrapper instead of raw zlib.
constexpr int kGzipWindowBits = 15 + 16;
constexpr size_t kChunk = 64 * 1024;
constexpr size_t kMaxZlibInput = std::numeric_limits<uInt>::max();

}  // namespace

Result<std::string> GzipCompress(std::string_view data, int level) {
  if (level < -1 || level > 9) return Status::Error("gzip: bad level");
  z_stream zs{};
  if (deflateInit2(&zs, level, Z_DEFLATED, kGzipWindowBits, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    return Status::Error("gzip: deflateInit2 failed");
  }
  std::string out;
  out.reserve(data.size() / 2 + 64);
  size_t consumed = 0;
  int rc = Z_OK;
  char buf[kChunk];
  do {
    if (zs.avail_in == 0 && consumed < data.size()) {
      const size_t take = std::min(kMaxZlibInput, data.size() - consumed);
      zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data() + consumed));
      zs.avail_in = static_cast<uInt>(take);
      consumed += take;
    }
    const int flush = consumed == data.size() ? Z_FINISH : Z_NO_FLUSH;
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = static_cast<uInt>(kChunk);
    rc = deflate(&zs, flush);
    if (rc == Z_STREAM_ERROR) {
      deflateEnd(&zs);
      return Status::Error("gzip: deflate failed");
    }
    out.append(buf, kChunk - zs.avail_out);
  } while (rc != Z_STREAM_END);
  deflateEnd(&zs);
  return out;
}

Result<std::string> GzipDecompress(std::string_view data, size_t max_output) {
  z_stream zs{};
  if (inflateInit2(&zs, kGzipWindowBits) != Z_OK) {
    return Status::Error("gunzip: inflateInit2 failed");
  }
  std::string out;
  size_t consumed = 0;
  char buf[kChunk];
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    if (zs.avail_in == 0 && consumed < data.size()) {
      const size_t take = std::min(kMaxZlibInput, data.size() - consumed);
      zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data() + consumed));
      zs.avail_in = static_cast<uInt>(take);
      consumed += take;
    }
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = static_cast<uInt>(kChunk);
    rc = inflate(&zs, Z_NO_FLUSH);
    // With output space available, Z_BUF_ERROR means inflate needs input we do not have.
    if (rc == Z_BUF_ERROR && zs.avail_in == 0 && consumed == data.size()) {
      inflateEnd(&zs);
      return Status::Error("gunzip: truncated input");
    }
    if (rc != Z_OK && rc != Z_STREAM_END) {
      inflateEnd(&zs);
      return Status::Error(std::string("gunzip: corrupt input") +
                           (zs.msg != nullptr ? std::string(": ") + zs.msg : std::string()));
    }
    const size_t produced = kChunk - zs.avail_out;
    if (out.size() + produced > max_output) {
      inflateEnd(&zs);
      return Status::Error("gunzip: output exceeds limit");
    }
    out.append(buf, produced);
  }
  const bool trailing = zs.avail_in != 0 || consumed != data.size();
  inflateEnd(&zs);
  if (trailing) return Status::Error("gunzip: trailing data after gzip stream");
  return out;
}

}  // namespace edge::cloudsync
