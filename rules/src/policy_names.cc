// The names policies and alert payloads give the policy model's enums (policy.h).
#include <string_view>

#include "edge/rules/policy.h"

namespace edge::rules {

std::string_view ToString(Severity severity) {
  switch (severity) {
    case Severity::kInfo:
      return "info";
    case Severity::kWarning:
      return "warning";
    case Severity::kCritical:
      return "critical";
  }
  return "unknown";
}

std::string_view ToString(Direction direction) {
  switch (direction) {
    case Direction::kUp:
      return "up";
    case Direction::kDown:
      return "down";
    case Direction::kBoth:
      return "both";
  }
  return "unknown";
}

}  // namespace edge::rules
