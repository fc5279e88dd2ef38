#pragma once

// Which labels a node may have (docs/protocol.md, "Node labels"). Labels choose which
// policy a node receives, so they are bound to the node's identity: the admin writes them
// beside the node's token, and the labels a node claims in its hello count only where that
// binding allows.
//
// A binding is "key=value,key2=*,...": `key=value` fixes the label whatever the node
// claims; `key2=*` takes the node's own claim for key2 (absent if it claims none). Any
// other claimed label is refused. An empty binding gives the node no labels. Values and
// keys follow the agent's label syntax (cloudsync::ParseLabels).
//
// Immutable after parsing; safe to share between threads.

#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "edge/common/status.h"
#include "edge/console/selector.h"

namespace edge::console {

class LabelBinding {
 public:
  static Result<LabelBinding> Parse(std::string_view text);

  struct Outcome {
    Labels labels;                     // what the console holds for the node
    std::vector<std::string> refused;  // claims not taken, as "key=value", sorted
  };
  Outcome Apply(const Labels& claimed) const;

 private:
  Labels fixed_;
  std::set<std::string> free_;  // keys whose value the node chooses
};

}  // namespace edge::console
