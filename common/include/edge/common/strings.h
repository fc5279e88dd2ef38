#pragma once

// Small string helpers shared by every module. Pure, allocation-free, ASCII only (no locale).

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

}  // namespace edge
