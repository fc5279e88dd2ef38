#include "edge/agent/replay.h"

#include <chrono>
#include <fstream>
#include <map>
#include <ostream>
#include <sstream>

#include "edge/agent/pipeline.h"
#include "edge/rules/engine.h"
#include "edge/rules/policy.h"
#include "recorded_readings.h"

namespace edge::agent {

int RunReplay(const ReplayOptions& options, std::ostream& out, std::ostream& err) {
  const auto t0 = std::chrono::steady_clock::now();
  std::ifstream policy_in(options.policy_file, std::ios::binary);
  if (!policy_in) {
    err << options.policy_file << ": cannot read\n";
    return 2;
  }
  std::ostringstream policy_text;
  policy_text << policy_in.rdbuf();
  auto policy = rules::ParsePolicy(policy_text.str(), options.policy_file);
  if (!policy.ok()) {
    err << policy.error() << "\n";
    return 2;
  }

  RecordedReadings input;
  if (!LoadRecordedFiles(options.inputs, options.sensor, input, err)) return 2;

  rules::Engine engine(std::move(*policy));
  std::map<std::string, std::pair<int64_t, int64_t>> per_rule;  // firing, resolved
  for (const auto& r : engine.policy().rules) per_rule[r.id];
  int64_t firing = 0, resolved = 0;
  RunRows(engine, input, input.rows,
          [&](const RecordedRow&, std::vector<rules::AlertEvent>& events) {
            for (const rules::AlertEvent& e : events) {
              out << AlertPayloadJson(e) << "\n";
              auto& counts = per_rule[e.rule_id];
              if (e.state == rules::AlertState::kFiring) {
                ++firing;
                ++counts.first;
              } else {
                ++resolved;
                ++counts.second;
              }
            }
          });
  out.flush();

  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  err << "replay: " << input.rows.size() << " readings of " << input.sensor_index.size()
      << " sensor(s) from " << options.inputs.size() << " file(s) in " << ms << " ms; " << firing
      << " firing, " << resolved << " resolved";
  if (!input.rows.empty()) {
    err << "; event time " << input.rows.front().ts_ms << ".." << input.rows.back().ts_ms;
  }
  err << "\n";
  err << "replay: skipped " << input.skipped << " unreadable row(s); ignored "
      << engine.out_of_order() << " out of order, " << engine.duplicates() << " duplicate, "
      << engine.non_finite() << " non-finite, " << engine.out_of_range() << " out of range\n";
  for (const auto& [rule, counts] : per_rule) {
    err << "replay: rule " << rule << ": " << counts.first << " firing, " << counts.second
        << " resolved\n";
  }
  return 0;
}

}  // namespace edge::agent
