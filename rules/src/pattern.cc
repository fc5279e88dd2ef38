#include "edge/rules/pattern.h"

#include <string>

namespace edge::rules {
namespace {

// Splits off the first level of `rest`; afterwards `rest` holds what followed the '/', and
// `more` says whether there was a '/' at all (so "a/" has a second, empty level).
std::string_view NextLevel(std::string_view& rest, bool& more) {
  const size_t slash = rest.find('/');
  if (slash == std::string_view::npos) {
    std::string_view level = rest;
    rest = {};
    more = false;
    return level;
  }
  std::string_view level = rest.substr(0, slash);
  rest.remove_prefix(slash + 1);
  more = true;
  return level;
}

Status Invalid(std::string_view pattern, std::string_view why) {
  return Status::Error("invalid pattern '" + std::string(pattern) + "': " + std::string(why));
}

}  // namespace

bool TopicMatches(std::string_view pattern, std::string_view topic) {
  if (pattern.empty()) return false;
  bool pattern_more = true;
  bool topic_more = true;
  while (pattern_more) {
    const std::string_view p = NextLevel(pattern, pattern_more);
    if (p == "#") return !pattern_more;  // '#' anywhere but last makes the pattern invalid
    if (!topic_more) return false;       // pattern has a level the topic lacks
    const std::string_view t = NextLevel(topic, topic_more);
    if (p == "+") continue;
    if (p.find_first_of("+#") != std::string_view::npos) return false;
    if (p != t) return false;
  }
  return !topic_more;
}

Status ValidatePattern(std::string_view pattern) {
  if (pattern.empty()) return Invalid(pattern, "empty");
  if (pattern.find('\0') != std::string_view::npos) return Invalid(pattern, "NUL character");
  std::string_view rest = pattern;
  bool more = true;
  while (more) {
    const std::string_view level = NextLevel(rest, more);
    if (level.find('#') != std::string_view::npos) {
      if (level != "#") return Invalid(pattern, "'#' must be a whole level");
      if (more) return Invalid(pattern, "'#' must be the last level");
    }
    if (level.find('+') != std::string_view::npos && level != "+") {
      return Invalid(pattern, "'+' must be a whole level");
    }
  }
  return Status::Ok();
}

}  // namespace edge::rules
