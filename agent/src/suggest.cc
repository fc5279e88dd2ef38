#include "edge/agent/suggest.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <iomanip>
#include <optional>
#include <ostream>
#include <sstream>
#include <variant>

#include "edge/rules/duration.h"
#include "edge/rules/engine.h"
#include "edge/rules/pattern.h"
#include "edge/rules/policy.h"
#include "recorded_readings.h"

namespace edge::agent {
namespace {

constexpr int64_t kDayMs = 86'400'000;
// Candidate levels: quantiles of the readings a rule sees. Below the 90th percentile a
// level would be crossed most of the time.
constexpr double kQuantiles[] = {0.9, 0.95, 0.98, 0.99, 0.995, 0.998, 0.999, 0.9999, 1.0};
// Candidate `for`: this many typical reporting intervals of the rule's sensors.
constexpr int64_t kForIntervals[] = {0, 1, 2, 5};
// Over normal operation a rule may be firing for at most this share of its readings: an
// alert that never clears counts once but is worse than many short ones.
constexpr double kMaxFiringShare = 0.01;
constexpr double kZCandidates[] = {2, 2.5, 3, 3.5, 4, 5, 6, 8, 10};
constexpr double kSensitivities[] = {10, 5, 3, 2, 1.5, 1, 0.667, 0.5, 0.3, 0.2, 0.1};

// The readings one rule sees: those of the sensors its pattern matches, in time order.
struct RuleData {
  std::vector<RecordedRow> rows;
  size_t sensors = 0;
  double sensor_days = 0;
  int64_t interval_ms = 0;  // median gap between two readings of a sensor, whole seconds
};

struct Result {
  int64_t alerts = 0;       // firing events
  double firing_share = 0;  // share of the readings that found the rule firing on their sensor
};

RuleData Select(const RecordedReadings& in, const rules::RuleSpec& rule) {
  std::vector<char> matches(in.sensors.size());
  RuleData d;
  for (size_t i = 0; i < in.sensors.size(); ++i) {
    matches[i] = rules::TopicMatches(rule.match, in.sensors[i]) ? 1 : 0;
    d.sensors += static_cast<size_t>(matches[i]);
  }
  for (const RecordedRow& r : in.rows) {
    if (matches[r.sensor] != 0) d.rows.push_back(r);
  }
  if (!d.rows.empty()) {
    // At least an hour, so that a short recording does not inflate the rate.
    const double days = std::max(static_cast<double>(d.rows.back().ts_ms - d.rows.front().ts_ms) /
                                     static_cast<double>(kDayMs),
                                 1.0 / 24);
    d.sensor_days = days * static_cast<double>(d.sensors);
  }
  std::vector<int64_t> last(in.sensors.size(), -1);
  std::vector<int64_t> gaps;
  for (const RecordedRow& r : d.rows) {
    if (last[r.sensor] >= 0 && r.ts_ms > last[r.sensor]) gaps.push_back(r.ts_ms - last[r.sensor]);
    last[r.sensor] = r.ts_ms;
  }
  if (!gaps.empty()) {
    std::nth_element(gaps.begin(), gaps.begin() + static_cast<std::ptrdiff_t>(gaps.size() / 2),
                     gaps.end());
    d.interval_ms = std::max<int64_t>(1000, gaps[gaps.size() / 2] / 1000 * 1000);
  }
  return d;
}

// `rule` alone (with the policy's filters) over `d`.
Result Backtest(const rules::Policy& base, const rules::RuleSpec& rule, const RuleData& d,
                const RecordedReadings& in) {
  rules::Policy p;
  p.context_size = 0;
  p.filters = base.filters;
  p.rules = {rule};
  rules::Engine engine(std::move(p));
  Result result;
  int64_t firing_readings = 0;
  std::vector<char> firing(in.sensors.size());
  RunRows(engine, in, d.rows, [&](const RecordedRow& row, std::vector<rules::AlertEvent>& events) {
    for (const auto& e : events) {
      const bool fires = e.state == rules::AlertState::kFiring;
      result.alerts += fires ? 1 : 0;
      firing[in.sensor_index.at(e.sensor)] = fires ? 1 : 0;
    }
    firing_readings += firing[row.sensor];
  });
  if (!d.rows.empty()) {
    result.firing_share = static_cast<double>(firing_readings) / static_cast<double>(d.rows.size());
  }
  return result;
}

// `v` rounded to three significant digits, up or down.
double Round3(double v, bool up) {
  if (v == 0 || !std::isfinite(v)) return v;
  const double scale = std::pow(10.0, 2 - std::floor(std::log10(std::fabs(v))));
  return (up ? std::ceil(v * scale) : std::floor(v * scale)) / scale;
}

std::string Number(double v) {
  char buf[32];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return ec == std::errc() ? std::string(buf, end) : std::string("nan");
}

// Candidate levels for `above` (ascending) or `below` (descending) from the data.
std::vector<double> Levels(const RuleData& d, bool above, std::optional<double> current) {
  std::vector<double> values;
  values.reserve(d.rows.size());
  for (const RecordedRow& r : d.rows) {
    if (std::isfinite(r.value)) values.push_back(r.value);
  }
  std::vector<double> out;
  if (current) out.push_back(*current);
  if (values.empty()) return out;
  std::sort(values.begin(), values.end());
  for (double q : kQuantiles) {
    const double pick = above ? q : 1 - q;
    const auto i = static_cast<size_t>(pick * static_cast<double>(values.size() - 1));
    out.push_back(Round3(values[i], above));
  }
  // Just past the extreme: nothing in this data reaches it.
  const double extreme = above ? values.back() : values.front();
  const double margin = std::max(std::fabs(extreme) * 1e-3, 1e-9);
  out.push_back(Round3(above ? extreme + margin : extreme - margin, above));
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  if (!above) std::reverse(out.begin(), out.end());
  return out;
}

std::vector<int64_t> Fors(int64_t current, int64_t interval_ms) {
  std::vector<int64_t> out;
  for (int64_t n : kForIntervals) out.push_back(n * interval_ms);
  out.push_back(current);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

struct Outcome {
  rules::RuleSpec rule;
  Result result;
  bool within = false;
};

class Tuner {
 public:
  Tuner(const rules::Policy& policy, const RecordedReadings& in, double budget)
      : policy_(policy), in_(in), budget_(budget) {}

  bool Within(const Result& r, const RuleData& d) const {
    return static_cast<double>(r.alerts) <= budget_ * d.sensor_days &&
           r.firing_share <= kMaxFiringShare;
  }

  Outcome Evaluate(const rules::RuleSpec& rule, const RuleData& d) {
    const Result r = Backtest(policy_, rule, d, in_);
    return {rule, r, Within(r, d)};
  }

  // The first candidate (in preference order) within the budget, or else the least alerting.
  Outcome Best(const std::vector<rules::RuleSpec>& candidates, const RuleData& d) {
    Outcome least;
    bool any = false;
    for (const rules::RuleSpec& c : candidates) {
      Outcome o = Evaluate(c, d);
      if (o.within) return o;
      if (!any || o.result.alerts < least.result.alerts) least = std::move(o);
      any = true;
    }
    return least;
  }

  Outcome Tune(const rules::RuleSpec& rule, const RuleData& d) {
    std::vector<rules::RuleSpec> candidates;
    if (const auto* t = std::get_if<rules::ThresholdParams>(&rule.params)) {
      rules::RuleSpec current = rule;
      if (t->above) current = TuneLevel(current, d, /*above=*/true);
      if (t->below) current = TuneLevel(current, d, /*above=*/false);
      return Evaluate(current, d);
    }
    if (const auto* z = std::get_if<rules::ZScoreParams>(&rule.params)) {
      std::vector<double> zs(std::begin(kZCandidates), std::end(kZCandidates));
      zs.push_back(z->z);
      std::sort(zs.begin(), zs.end());
      zs.erase(std::unique(zs.begin(), zs.end()), zs.end());
      for (double value : zs) {
        for (int64_t f : Fors(z->for_ms, d.interval_ms)) {
          rules::RuleSpec c = rule;
          auto& p = std::get<rules::ZScoreParams>(c.params);
          p.z = value;
          p.for_ms = f;
          candidates.push_back(std::move(c));
        }
      }
      return Best(candidates, d);
    }
    if (std::holds_alternative<rules::AnomalyParams>(rule.params)) {
      for (double s : kSensitivities) {
        rules::RuleSpec c = rule;
        std::get<rules::AnomalyParams>(c.params).sensitivity = s;
        candidates.push_back(std::move(c));
      }
      return Best(candidates, d);
    }
    return Evaluate(rule, d);
  }

 private:
  rules::RuleSpec TuneLevel(const rules::RuleSpec& rule, const RuleData& d, bool above) {
    const auto& t = std::get<rules::ThresholdParams>(rule.params);
    const std::optional<double> level = above ? t.above : t.below;
    // A clear level keeps its distance to the level it clears.
    const bool has_clear = t.clear.has_value() && level.has_value();
    const double gap = has_clear ? std::fabs(*level - *t.clear) : 0;
    std::vector<rules::RuleSpec> candidates;
    for (double v : Levels(d, above, level)) {
      for (int64_t f : Fors(t.for_ms, d.interval_ms)) {
        rules::RuleSpec c = rule;
        auto& p = std::get<rules::ThresholdParams>(c.params);
        (above ? p.above : p.below) = v;
        p.for_ms = f;
        if (has_clear) p.clear = above ? v - gap : v + gap;
        candidates.push_back(std::move(c));
      }
    }
    return Best(candidates, d).rule;
  }

  const rules::Policy& policy_;
  const RecordedReadings& in_;
  double budget_;
};

// The keys of a rule that the tuner may change, as policy text.
std::vector<std::pair<std::string, std::string>> TunedKeys(const rules::RuleSpec& r) {
  std::vector<std::pair<std::string, std::string>> keys;
  if (const auto* t = std::get_if<rules::ThresholdParams>(&r.params)) {
    if (t->above) keys.emplace_back("above", Number(*t->above));
    if (t->below) keys.emplace_back("below", Number(*t->below));
    if (t->clear) keys.emplace_back("clear", Number(*t->clear));
    keys.emplace_back("for", rules::FormatDuration(t->for_ms));
  } else if (const auto* z = std::get_if<rules::ZScoreParams>(&r.params)) {
    keys.emplace_back("z", Number(z->z));
    keys.emplace_back("for", rules::FormatDuration(z->for_ms));
  } else if (const auto* a = std::get_if<rules::AnomalyParams>(&r.params)) {
    keys.emplace_back("sensitivity", Number(a->sensitivity));
  }
  return keys;
}

std::string PerSensorDay(int64_t alerts, double sensor_days) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(2)
    << (sensor_days > 0 ? static_cast<double>(alerts) / sensor_days : 0.0);
  return s.str();
}

std::string Percent(double share) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(2) << 100 * share << "%";
  return s.str();
}

}  // namespace

int RunSuggest(const SuggestOptions& options, std::ostream& out, std::ostream& err) {
  if (!(options.budget > 0) || !std::isfinite(options.budget)) {
    err << "suggest: the budget must be a positive number of alerts per sensor-day\n";
    return 2;
  }
  std::ifstream policy_in(options.policy_file, std::ios::binary);
  if (!policy_in) {
    err << options.policy_file << ": cannot read\n";
    return 2;
  }
  std::ostringstream text;
  text << policy_in.rdbuf();
  auto policy = rules::ParsePolicy(text.str(), options.policy_file);
  if (!policy.ok()) {
    err << policy.error() << "\n";
    return 2;
  }
  RecordedReadings in;
  if (!options.inputs.empty() && !LoadRecordedFiles(options.inputs, options.sensor, in, err)) {
    return 2;
  }
  if (!options.db.empty() && !LoadStoredReadings(options.db, options.since_ms, in, err)) return 2;
  if (in.rows.empty()) {
    err << "suggest: no readings\n";
    return 2;
  }

  Tuner tuner(*policy, in, options.budget);
  std::ostringstream table;
  std::ostringstream diff;
  bool matched_any = false;
  table << "| rule | kind | sensors | sensor-days | alerts now | per sensor-day | firing "
           "| suggested: alerts | per sensor-day | firing | within budget |\n"
           "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n";
  for (const rules::RuleSpec& rule : policy->rules) {
    const RuleData d = Select(in, rule);
    if (d.rows.empty()) {
      table << "| " << rule.id << " | " << rule.Kind() << " | 0 | | | | | | | | no readings |\n";
      continue;
    }
    matched_any = true;
    const Result now = Backtest(*policy, rule, d, in);
    const Outcome best = tuner.Tune(rule, d);
    table << "| " << rule.id << " | " << rule.Kind() << " | " << d.sensors << " | " << std::fixed
          << std::setprecision(2) << d.sensor_days << " | " << now.alerts << " | "
          << PerSensorDay(now.alerts, d.sensor_days) << " | " << Percent(now.firing_share) << " | "
          << best.result.alerts << " | " << PerSensorDay(best.result.alerts, d.sensor_days) << " | "
          << Percent(best.result.firing_share) << " | " << (best.within ? "yes" : "no") << " |\n";
    const auto before = TunedKeys(rule);
    const auto after = TunedKeys(best.rule);
    if (before == after) continue;
    diff << "@@ rule " << rule.id << " (" << rule.Kind() << ", " << rule.match << ") @@\n";
    for (size_t i = 0; i < before.size() && i < after.size(); ++i) {
      if (before[i] == after[i]) {
        diff << "     " << before[i].first << ": " << before[i].second << "\n";
      } else {
        diff << "-    " << before[i].first << ": " << before[i].second << "\n";
        diff << "+    " << after[i].first << ": " << after[i].second << "\n";
      }
    }
  }
  if (!matched_any) {
    err << "suggest: no reading matched any rule of " << options.policy_file << "\n";
    return 2;
  }
  out << "# Backtest on " << in.rows.size() << " readings of " << in.sensors.size()
      << " sensor(s); budget " << Number(options.budget)
      << " firing alert(s) per sensor-day, firing at most 1% of the time\n\n"
      << table.str() << "\n";
  const std::string changes = diff.str();
  if (changes.empty()) {
    out << "No change: every tunable rule is already the most sensitive setting within "
           "the budget.\n";
  } else {
    out << "--- " << options.policy_file << "\n+++ suggested\n" << changes;
  }
  return 0;
}

}  // namespace edge::agent
