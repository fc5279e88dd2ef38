// libFuzzer target for the policy parser: any input must yield a Policy or an error message
// of the form "<source>:<line>:<column>: ...", never an exception or a crash. Policies that
// parse are run through an Engine so that odd but valid patterns and levels are exercised.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "edge/rules/engine.h"
#include "edge/rules/policy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  edge::Result<edge::rules::Policy> policy = edge::rules::ParsePolicy(text, "fuzz");
  if (!policy.ok()) {
    if (policy.error().rfind("fuzz:", 0) != 0) __builtin_trap();
    return 0;
  }
  edge::rules::Engine engine(std::move(policy).value());
  std::vector<edge::rules::AlertEvent> out;
  int64_t ts = 0;
  for (const edge::rules::RuleSpec& rule : engine.policy().rules) {
    // The pattern itself, with wildcards, is a sensor id like any other.
    for (const double value : {-1e300, 0.0, 1e300, 0.0}) {
      engine.Process(edge::rules::Reading{rule.match, ts, value}, out);
      ts += 1000;
    }
  }
  // Clock-driven rules, and a swap to the same policy (every rule keeps its state).
  engine.Advance(ts + 86'400'000, out);
  edge::rules::Policy same = engine.policy();
  engine.SwapPolicy(std::move(same), out);
  for (const edge::rules::RuleSpec& rule : engine.policy().rules) {
    engine.Process(edge::rules::Reading{rule.match, ts, 1.0}, out);
  }
  return 0;
}
