#include "edge/console/codec.h"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <limits>
#include <stdexcept>

namespace edge::console {
namespace {

// windowBits 15 plus 16 selects the gzip wrapper (header and CRC-32 trailer).
constexpr int kGzipWindowBits = 15 + 16;
constexpr size_t kChunk = 64 * 1024;

Gunzipped Fail(GunzipCode code, std::string error) {
  Gunzipped out;
  out.code = code;
  out.error = std::move(error);
  return out;
}

}  // namespace

Gunzipped Gunzip(std::string_view compressed, size_t max_output) {
  if (compressed.size() > std::numeric_limits<uInt>::max()) {
    return Fail(GunzipCode::kTooLarge, "compressed body too large");
  }
  z_stream zs{};
  if (inflateInit2(&zs, kGzipWindowBits) != Z_OK) {
    return Fail(GunzipCode::kCorrupt, "cannot initialise gzip decoder");
  }
  // zlib's API takes a non-const pointer but does not write through next_in.
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data()));
  zs.avail_in = static_cast<uInt>(compressed.size());

  Gunzipped out;
  std::array<char, kChunk> chunk;
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    zs.next_out = reinterpret_cast<Bytef*>(chunk.data());
    zs.avail_out = static_cast<uInt>(chunk.size());
    rc = inflate(&zs, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) {
      inflateEnd(&zs);
      // Z_BUF_ERROR with no input left means the stream stopped early.
      return Fail(GunzipCode::kCorrupt,
                  rc == Z_BUF_ERROR ? "truncated gzip stream" : "corrupt gzip stream");
    }
    const size_t produced = chunk.size() - zs.avail_out;
    if (out.data.size() + produced > max_output) {
      inflateEnd(&zs);
      return Fail(GunzipCode::kTooLarge,
                  "decompressed body exceeds " + std::to_string(max_output) + " bytes");
    }
    out.data.append(chunk.data(), produced);
    if (rc == Z_OK && produced == 0 && zs.avail_in == 0) {
      inflateEnd(&zs);
      return Fail(GunzipCode::kCorrupt, "truncated gzip stream");
    }
  }
  const bool trailing = zs.avail_in != 0;
  inflateEnd(&zs);
  if (trailing) return Fail(GunzipCode::kCorrupt, "unexpected bytes after gzip stream");
  return out;
}

std::string Gzip(std::string_view data) {
  z_stream zs{};
  if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, kGzipWindowBits, 8,
                   Z_DEFAULT_STRATEGY) != Z_OK) {
    throw std::runtime_error("deflateInit2 failed");
  }
  std::string out;
  std::array<char, kChunk> chunk;
  size_t offset = 0;
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    const size_t take = std::min<size_t>(data.size() - offset, 1u << 30);
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data() + offset));
    zs.avail_in = static_cast<uInt>(take);
    const bool last = offset + take == data.size();
    do {
      zs.next_out = reinterpret_cast<Bytef*>(chunk.data());
      zs.avail_out = static_cast<uInt>(chunk.size());
      rc = deflate(&zs, last ? Z_FINISH : Z_NO_FLUSH);
      if (rc == Z_STREAM_ERROR) {
        deflateEnd(&zs);
        throw std::runtime_error("deflate failed");
      }
      out.append(chunk.data(), chunk.size() - zs.avail_out);
    } while (zs.avail_out == 0);
    offset += take - zs.avail_in;
  }
  deflateEnd(&zs);
  return out;
}

}  // namespace edge::console
