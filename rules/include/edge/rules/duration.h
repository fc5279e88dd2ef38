#pragma once

// Durations as written in config and policy files: an integer followed by a unit,
// `250ms`, `30s`, `5m`, `1h`, `2d`; several parts may be joined (`1h30m`). A bare `0` is
// zero. Anything else (`5 minutes`, `-1s`, `1.5h`, overflow) is an error naming the text.

#include <cstdint>
#include <string>
#include <string_view>

#include "edge/common/status.h"

namespace edge::rules {

// Milliseconds, or an error message.
Result<int64_t> ParseDuration(std::string_view text);

// Shortest exact rendering, e.g. 90000 -> "1m30s", 250 -> "250ms", 0 -> "0s".
std::string FormatDuration(int64_t ms);

}  // namespace edge::rules
