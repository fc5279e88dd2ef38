#pragma once

// gzip (RFC 1952) framing over zlib for request bodies. Pure; thread-safe.

#include <cstddef>
#include <string>
#include <string_view>

#include "edge/common/status.h"

namespace edge::cloudsync {

// level: 0 (store) .. 9 (best); -1 is zlib's default (6).
Result<std::string> GzipCompress(std::string_view data, int level = -1);

// Fails on corrupt or truncated input, trailing garbage, or output above max_output bytes
// (a bound against decompression bombs).
Result<std::string> GzipDecompress(std::string_view data, size_t max_output);

}  // namespace edge::cloudsync
