#pragma once

// Node selectors of the policy channel (docs/protocol.md, "Policies, versions, selectors"):
// `all`, or requirements over node labels joined by commas, every one of which must hold:
// `k=v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k` (has the label), `!k` (has not).
//
// A Selector is an immutable value, safe to share between threads. Parse never throws.

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "edge/common/status.h"

namespace edge::console {

using Labels = std::map<std::string, std::string>;

class Selector {
 public:
  enum class Op { kEquals, kNotEquals, kIn, kNotIn, kExists, kNotExists };
  struct Requirement {
    std::string key;
    Op op = Op::kExists;
    std::vector<std::string> values;  // one for = and !=, one or more for in/notin
  };

  // Matches every node (the same as Parse("all")).
  Selector() = default;

  // Parses selector text. Keys are [A-Za-z0-9_./-]{1,63}, values [A-Za-z0-9_.-]{0,63};
  // spaces around tokens are ignored. An empty text, an empty requirement ("a=1,,b"), an
  // unclosed "(" or an unknown operator is an error naming the offending position.
  static Result<Selector> Parse(std::string_view text);

  bool Matches(const Labels& labels) const;
  bool all() const { return requirements_.empty(); }
  // The canonical text: "all" or the requirements joined by ",".
  std::string ToString() const;
  const std::vector<Requirement>& requirements() const { return requirements_; }

 private:
  std::vector<Requirement> requirements_;
};

}  // namespace edge::console
