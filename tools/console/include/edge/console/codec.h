#pragma once

// gzip (RFC 1952) for request bodies. Input is untrusted: decoding stops as soon as the
// output would exceed the caller's cap, so a small "bomb" cannot exhaust memory.

#include <cstddef>
#include <string>
#include <string_view>

namespace edge::console {

enum class GunzipCode { kOk, kCorrupt, kTooLarge };

struct Gunzipped {
  GunzipCode code = GunzipCode::kOk;
  std::string data;   // the decompressed bytes when code == kOk, else empty
  std::string error;  // human-readable reason when code != kOk
};

// Decompresses one gzip member. Trailing bytes after the member, a truncated stream or a
// bad checksum yield kCorrupt; more than `max_output` decompressed bytes yield kTooLarge.
Gunzipped Gunzip(std::string_view compressed, size_t max_output);

// Compresses `data` as one gzip member (used by tests and tools that upload batches).
// Throws std::runtime_error only if zlib itself fails (out of memory).
std::string Gzip(std::string_view data);

}  // namespace edge::console
