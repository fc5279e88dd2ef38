#pragma once

// Standard base64 (RFC 4648 section 4, with padding) on OpenSSL's EVP_EncodeBlock and
// EVP_DecodeBlock. Pure.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace edge::cloudsync {

std::string Base64Encode(const unsigned char* data, size_t n);

// Strict: only the standard alphabet, '=' only as the last one or two characters, a length
// that is a multiple of 4, at most `max_chars` characters; nullopt otherwise (and for "").
std::optional<std::vector<unsigned char>> Base64Decode(std::string_view text, size_t max_chars);

}  // namespace edge::cloudsync
