#include "edge/cloudsync/gzip.h"

#include <zlib.h>

#include <algorithm>
#include <limits>

namespace edge::cloudsync {
namespace {

// windowBits 15 plus 16 selects the gzip wrapper; 15 alone the zlib wrapper (RFC 1950),
// whose header names a preset dictionary by its Adler-32.
constexpr int kGzipWindowBits = 15 + 16;
constexpr int kZlibWindowBits = 15;
constexpr size_t kChunk = 64 * 1024;
constexpr size_t kMaxZlibInput = std::numeric_limits<uInt>::max();

Result<std::string> Compress(std::string_view data, int level, int window_bits,
                             std::string_view dictionary) {
  if (level < -1 || level > 9) return Status::Error("compress: bad level");
  z_stream zs{};
  if (deflateInit2(&zs, level, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    return Status::Error("compress: deflateInit2 failed");
  }
  if (!dictionary.empty() &&
      deflateSetDictionary(&zs, reinterpret_cast<const Bytef*>(dictionary.data()),
                           static_cast<uInt>(dictionary.size())) != Z_OK) {
    deflateEnd(&zs);
    return Status::Error("compress: setting the dictionary failed");
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
      return Status::Error("compress: deflate failed");
    }
    out.append(buf, kChunk - zs.avail_out);
  } while (rc != Z_STREAM_END);
  deflateEnd(&zs);
  return out;
}

Result<std::string> Decompress(std::string_view data, size_t max_output, int window_bits,
                               std::string_view dictionary, bool* too_large) {
  if (too_large != nullptr) *too_large = false;
  z_stream zs{};
  if (inflateInit2(&zs, window_bits) != Z_OK) {
    return Status::Error("decompress: inflateInit2 failed");
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
    if (rc == Z_NEED_DICT) {
      // Only the wire dictionary is known; the stream names its dictionary by Adler-32.
      const uLong want =
          adler32(adler32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(dictionary.data()),
                  static_cast<uInt>(dictionary.size()));
      if (dictionary.empty() || zs.adler != want ||
          inflateSetDictionary(&zs, reinterpret_cast<const Bytef*>(dictionary.data()),
                               static_cast<uInt>(dictionary.size())) != Z_OK) {
        inflateEnd(&zs);
        return Status::Error("decompress: the body needs a dictionary this side does not have");
      }
      rc = inflate(&zs, Z_NO_FLUSH);
    }
    // With output space available, Z_BUF_ERROR means inflate needs input we do not have.
    if (rc == Z_BUF_ERROR && zs.avail_in == 0 && consumed == data.size()) {
      inflateEnd(&zs);
      return Status::Error("decompress: truncated input");
    }
    if (rc != Z_OK && rc != Z_STREAM_END) {
      inflateEnd(&zs);
      return Status::Error(std::string("decompress: corrupt input") +
                           (zs.msg != nullptr ? std::string(": ") + zs.msg : std::string()));
    }
    const size_t produced = kChunk - zs.avail_out;
    if (out.size() + produced > max_output) {
      inflateEnd(&zs);
      if (too_large != nullptr) *too_large = true;
      return Status::Error("decompress: output exceeds limit");
    }
    out.append(buf, produced);
  }
  const bool trailing = zs.avail_in != 0 || consumed != data.size();
  inflateEnd(&zs);
  if (trailing) return Status::Error("decompress: trailing data after the stream");
  return out;
}

}  // namespace

Result<std::string> GzipCompress(std::string_view data, int level) {
  return Compress(data, level, kGzipWindowBits, {});
}

Result<std::string> GzipDecompress(std::string_view data, size_t max_output, bool* too_large) {
  return Decompress(data, max_output, kGzipWindowBits, {}, too_large);
}

Result<std::string> DictCompress(std::string_view data, int level) {
  return Compress(data, level, kZlibWindowBits, kWireDictionary);
}

Result<std::string> DictDecompress(std::string_view data, size_t max_output, bool* too_large) {
  return Decompress(data, max_output, kZlibWindowBits, kWireDictionary, too_large);
}

}  // namespace edge::cloudsync
