#include "edge/rules/duration.h"

#include <array>
#include <limits>

namespace edge::rules {
namespace {

struct Unit {
  std::string_view suffix;
  int64_t ms;
};
// Longest suffix first so that "ms" is not read as "m" followed by garbage.
constexpr std::array<Unit, 5> kUnits{{{"ms", 1}, {"s", 1000}, {"m", 60'000}, {"h", 3'600'000},
                                      {"d", 86'400'000}}};

Status Bad(std::string_view text) {
  return Status::Error("invalid duration '" + std::string(text) +
                       "' (expected e.g. 250ms, 30s, 5m, 1h, 1h30m)");
}

}  // namespace

Result<int64_t> ParseDuration(std::string_view text) {
  if (text == "0") return int64_t{0};
  if (text.empty()) return Bad(text);
  int64_t total = 0;
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] < '0' || text[i] > '9') return Bad(text);
    int64_t n = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      if (n > (std::numeric_limits<int64_t>::max() - 9) / 10) return Bad(text);
      n = n * 10 + (text[i] - '0');
      ++i;
    }
    const Unit* unit = nullptr;
    for (const Unit& u : kUnits) {
      if (text.substr(i, u.suffix.size()) == u.suffix) {
        unit = &u;
        break;
      }
    }
    if (unit == nullptr) return Bad(text);
    i += unit->suffix.size();
    if (n > (std::numeric_limits<int64_t>::max() - total) / unit->ms) return Bad(text);
    total += n * unit->ms;
  }
  return total;
}

std::string FormatDuration(int64_t ms) {
  if (ms == 0) return "0s";
  std::string out;
  if (ms < 0) {
    out = "-";
    ms = -ms;
  }
  for (auto it = kUnits.rbegin(); it != kUnits.rend(); ++it) {
    if (ms >= it->ms) {
      out += std::to_string(ms / it->ms);
      out += it->suffix;
      ms %= it->ms;
    }
  }
  return out;
}

}  // namespace edge::rules
