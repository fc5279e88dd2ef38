#pragma once

// MQTT-style wildcard patterns over sensor ids. Levels are separated by '/'. '+' matches
// exactly one level (which may be empty); '#' matches the rest of the topic, including
// nothing at all, so "a/#" matches "a", "a/" and "a/b/c". Topics starting with '$' get no
// special treatment. Pure functions; thread-safe.

#include <string_view>

#include "edge/common/status.h"

namespace edge::rules {

// True if `topic` matches `pattern`. An invalid pattern (see ValidatePattern) matches
// nothing.
bool TopicMatches(std::string_view pattern, std::string_view topic);

// OK if `pattern` is non-empty, '#' appears only as the whole last level, '+' only as a
// whole level, and it holds no NUL character. The error message quotes the pattern.
Status ValidatePattern(std::string_view pattern);

}  // namespace edge::rules
