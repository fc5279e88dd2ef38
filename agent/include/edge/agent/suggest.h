#pragma once

// `edge-agent suggest`: tuning from data. For each rule of a policy, backtests it on recorded
// or stored readings (the same rules engine as the live agent, in event time) and searches
// its sensitivity settings for the most sensitive one that stays within a false-alert budget,
// in firing alerts per sensor-day over the readings given (which should be a stretch of
// normal operation: every alert in it counts as false):
// - threshold: `above` (and `below`) among the readings' own quantiles, rounded to three
//   significant digits, then `for` (0s, 10s, 1m, 5m, 15m, and the rule's own); the lowest
//   `above` (highest `below`) that meets the budget with some `for`, with the shortest such
//   `for`; a `clear` keeps its distance to the level;
// - zscore: `z` from 2 to 10, then `for` (0s, 1m, 5m, the rule's own), the lowest z first;
// - anomaly: `sensitivity` from 10 down to 0.1, the highest that meets the budget.
// Other kinds (rate, stale, flatline, range) are backtested and reported unchanged. Prints
// the backtest table and a diff of the changed keys on `out`, problems on `err`.

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

namespace edge::agent {

struct SuggestOptions {
  std::string policy_file;          // the rules to tune
  std::vector<std::string> inputs;  // recorded files (as for replay) ...
  std::string db;                   // ... and/or an agent database's readings ring
  int64_t since_ms = 0;             // with db: readings at or after this time
  std::string sensor;               // default sensor id of files without one
  double budget = 1.0;              // firing alerts per sensor-day, > 0
};

// Returns the process exit code: 0 after a suggestion (even "nothing meets the budget"), 2 if
// the policy or an input cannot be read, or no reading matched any rule.
int RunSuggest(const SuggestOptions& options, std::ostream& out, std::ostream& err);

}  // namespace edge::agent
