#pragma once

// Safe document counting for YAML read from files or the network.
//
// yaml-cpp 0.7's YAML::LoadAll loops forever, allocating, on inputs such as a lone ","
// (the parser reports an empty document without consuming input; fixed upstream after
// 0.7). Every parser of untrusted YAML in this project calls CountYamlDocuments first and
// then YAML::Load, never LoadAll.

#include <string>

#include "edge/common/status.h"

namespace edge::rules {

struct YamlDocuments {
  int count = 0;        // 0, 1, or 2 meaning "two or more"
  int second_line = 0;  // 1-based position where the second document starts (count == 2)
  int second_column = 0;
};

// Never throws. A syntax error is "<source_name>:<line>:<col>: <message>".
Result<YamlDocuments> CountYamlDocuments(const std::string& text, const std::string& source_name);

}  // namespace edge::rules
