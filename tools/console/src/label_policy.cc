#include "edge/console/label_policy.h"

#include <utility>

#include "edge/cloudsync/policy_message.h"

namespace edge::console {

Result<LabelBinding> LabelBinding::Parse(std::string_view text) {
  // `key=*` items are taken out first; the rest must be labels the agent could send.
  LabelBinding binding;
  std::string fixed_text;
  size_t pos = 0;
  while (pos <= text.size()) {
    const size_t comma = std::min(text.find(',', pos), text.size());
    std::string_view item = text.substr(pos, comma - pos);
    pos = comma + 1;
    const size_t eq = item.find('=');
    if (eq != std::string_view::npos && item.substr(eq + 1) == "*") {
      Result<Labels> key = cloudsync::ParseLabels(std::string(item.substr(0, eq)) + "=x");
      if (!key) return Status::Error(key.error());
      const std::string name = key->begin()->first;
      if (!binding.free_.insert(name).second) {
        return Status::Error("label \"" + name + "\" is given twice");
      }
      continue;
    }
    if (!fixed_text.empty()) fixed_text += ',';
    fixed_text.append(item);
  }
  Result<Labels> fixed = cloudsync::ParseLabels(fixed_text);
  if (!fixed) return Status::Error(fixed.error());
  for (const auto& [key, value] : *fixed) {
    if (binding.free_.count(key) != 0) {
      return Status::Error("label \"" + key + "\" is given twice");
    }
  }
  binding.fixed_ = std::move(*fixed);
  return binding;
}

LabelBinding::Outcome LabelBinding::Apply(const Labels& claimed) const {
  Outcome out;
  out.labels = fixed_;
  for (const auto& [key, value] : claimed) {
    if (free_.count(key) != 0) {
      out.labels[key] = value;
      continue;
    }
    const auto bound = fixed_.find(key);
    if (bound == fixed_.end() || bound->second != value) out.refused.push_back(key + "=" + value);
  }
  return out;
}

}  // namespace edge::console
