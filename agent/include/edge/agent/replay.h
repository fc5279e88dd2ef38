#pragma once

// `edge-agent replay`: backtesting. Runs the same rules engine as the live agent over
// recorded readings, on their own timestamps (event time), and prints each alert event as
// one JSON line (the outbox's alert payload, docs/protocol.md) on `out`; a summary and any
// input problems go to `err`.
//
// Inputs, any number, merged by timestamp (stable, so equal timestamps keep file order):
// - CSV with a header row naming a `timestamp` column (also accepted: `ts`, `time`,
//   `datetime`, `date`), a `value` column and optionally a `sensor` column, in any order
//   and case; fields may be double-quoted. Timestamps as ISO-8601 (`2014-02-07 14:55:00`,
//   `2014-02-07T14:55:00Z`; no zone = UTC) or epoch seconds or milliseconds.
// - JSON lines (a file whose first non-blank character is `{`): one object per line with
//   `value`, `ts` (or `timestamp`/`time`) and optionally `sensor`.
// Without a sensor column or key the sensor id is `sensor` from the options, or else the
// file's base name without its extension. A row that cannot be read is skipped, counted,
// and the first few are reported with file:line.
//
// Clock-driven rules (stale) get the time from the readings: Advance(ts) runs whenever
// event time has moved on by a second or more, so gaps inside a recording are found.

#include <iosfwd>
#include <string>
#include <vector>

namespace edge::agent {

struct ReplayOptions {
  std::string policy_file;
  std::string sensor;  // default sensor id; empty: each file's base name
  std::vector<std::string> inputs;
};

// Returns the process exit code: 0 after a replay (even with skipped rows), 2 if the
// policy is invalid or an input cannot be read or has no timestamp/value columns.
int RunReplay(const ReplayOptions& options, std::ostream& out, std::ostream& err);

}  // namespace edge::agent
