#pragma once

// Small string helpers shared by every module. Pure, allocation-free, ASCII only (no locale).

#include <algorithm>
#include <string>
#include <string_view>

namespace edge {

// Space, tab, CR, LF, vertical tab and form feed: what std::isspace accepts in the C locale.
constexpr bool IsAsciiSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

// Blank for header values and config lists: space and tab only (HTTP's OWS).
constexpr bool IsBlank(char c) { return c == ' ' || c == '\t'; }

// `s` without leading and trailing characters for which `is_trimmed` holds.
template <typename Pred>
constexpr std::string_view TrimIf(std::string_view s, Pred is_trimmed) {
  while (!s.empty() && is_trimmed(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_trimmed(s.back())) s.remove_suffix(1);
  return s;
}

// `s` without leading and trailing ASCII whitespace (IsAsciiSpace).
constexpr std::string_view Trim(std::string_view s) { return TrimIf(s, IsAsciiSpace); }

// `s` without leading and trailing spaces and tabs (IsBlank).
constexpr std::string_view TrimBlanks(std::string_view s) { return TrimIf(s, IsBlank); }

constexpr char AsciiLower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

// True when `a` and `b` are equal ignoring ASCII case.
constexpr bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (AsciiLower(a[i]) != AsciiLower(b[i])) return false;
  }
  return true;
}

// A printable excerpt of untrusted bytes for a log line: at most `max_bytes` of them, any
// byte outside printable ASCII (and the backslash) as \xNN, "..." when cut.
inline std::string PrintableExcerpt(std::string_view bytes, size_t max_bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  const size_t n = std::min(bytes.size(), max_bytes);
  for (size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  if (bytes.size() > n) out += "...";
  return out;
}

}  // namespace edge
