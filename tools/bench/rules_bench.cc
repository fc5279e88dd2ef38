// Throughput and memory of the rules engine: readings per second through filters and rules
// on one core, for 10,000 sensors each matched by 5 rules of different kinds, and bytes of
// state per sensor-rule; the windowed kinds (rate, rolling zscore) alone, with their
// window bytes per sensor at two reporting rates; and one anomaly rule per sensor against
// one threshold rule, the cheapest kind, in the same run. Figures and the command are in
// docs/performance.md.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "edge/rules/engine.h"
#include "edge/rules/policy.h"

namespace {

using edge::rules::AlertEvent;
using edge::rules::Engine;
using edge::rules::Policy;
using edge::rules::Reading;

constexpr int kSensors = 10'000;
constexpr int kRulesPerSensor = 5;
constexpr int64_t kStepMs = 1000;   // each sensor reports once a second
constexpr int kWarmupRounds = 600;  // ten minutes of data: every window is full

// Five rules on every sensor, a different kind each, plus a filter. The two policies below
// differ in `downsample` (a filter line or nothing), the second rule and the zscore's window.
std::string FiveRulePolicy(std::string_view downsample, std::string_view second,
                           std::string_view zscore_window) {
  return std::string(R"(
filters:
  - match: "site/+/+/temp"
    valid_range: {min: -100, max: 1000}
)") + std::string(downsample) +
         R"(rules:
  - {id: hot, match: "site/+/+/temp", kind: threshold, above: 90, clear: 85, for: 30s}
  - )" + std::string(second) +
         R"(
  - {id: outlier, match: "site/+/+/temp", kind: zscore, )" +
         std::string(zscore_window) + R"(, z: 6, min_samples: 30}
  - {id: stuck, match: "site/#", kind: flatline, window: 10m, epsilon: 0.001}
  - {id: silent, match: "site/#", kind: stale, after: 5m}
)";
}

std::string MixedPolicy() {
  return FiveRulePolicy("    downsample: 10s\n",
                        R"({id: climb, match: "site/#", kind: rate, window: 1m, max_rate: 0.5})",
                        "window: 5m");
}

// The same with the O(1) kinds only: EWMA instead of a rolling window, range for rate.
std::string CompactPolicy() {
  return FiveRulePolicy("", R"({id: fault, match: "site/#", kind: range, min: -40, max: 150})",
                        "half_life: 5m");
}

// The two kinds with windows: a 1-minute rate and a 5-minute rolling zscore.
constexpr char kWindowsPolicy[] = R"(
rules:
  - {id: climb, match: "site/#", kind: rate, window: 1m, max_rate: 0.5}
  - {id: outlier, match: "site/#", kind: zscore, window: 5m, z: 6, min_samples: 30}
)";

// One rule per sensor: the cheapest kind, and anomaly.
constexpr char kThresholdPolicy[] = R"(
rules:
  - {id: hot, match: "site/#", kind: threshold, above: 90}
)";
constexpr char kAnomalyPolicy[] = R"(
rules:
  - {id: odd, match: "site/#", kind: anomaly}
)";

Policy Parse(std::string_view text) {
  auto p = edge::rules::ParsePolicy(text, "bench.yaml");
  if (!p.ok()) std::abort();
  return std::move(*p);
}

struct Feed {
  std::vector<Reading> readings;  // one per sensor; ts and value move on each round
  std::vector<double> noise;
  size_t next = 0;
  size_t k = 0;
  int64_t step_ms;

  explicit Feed(int sensors = kSensors, int64_t step = kStepMs) : step_ms(step) {
    std::mt19937_64 rng(42);
    std::normal_distribution<double> n(0.0, 0.3);
    for (int i = 0; i < 1 << 16; ++i) noise.push_back(50.0 + n(rng));
    for (int i = 0; i < sensors; ++i) {
      readings.push_back(
          Reading{"site/line" + std::to_string(i / 100) + "/m" + std::to_string(i) + "/temp",
                  1'700'000'000'000, 50.0});
    }
  }

  const Reading& Next() {
    Reading& r = readings[next];
    r.ts_ms += step_ms;
    r.value = noise[k++ & (noise.size() - 1)];
    if (++next == readings.size()) next = 0;
    return r;
  }
};

void Run(benchmark::State& state, const std::string& policy_text,
         int rules_per_sensor = kRulesPerSensor) {
  Engine engine(Parse(policy_text));
  Feed feed;
  std::vector<AlertEvent> events;
  for (int64_t i = 0; i < int64_t{kSensors} * kWarmupRounds; ++i) {
    engine.Process(feed.Next(), events);
    events.clear();
  }
  int64_t stored = 0;
  int64_t n = 0;
  for (auto _ : state) {
    const edge::rules::ReadingVerdict v = engine.Process(feed.Next(), events);
    stored += v.store;
    events.clear();
    // The agent gives clock-driven rules the time once a second: here once per round.
    if (++n % kSensors == 0) {
      engine.Advance(feed.readings[0].ts_ms, events);
      events.clear();
    }
  }
  state.SetItemsProcessed(state.iterations());
  const double pairs = double{kSensors} * rules_per_sensor;
  state.counters["bytes_per_sensor_rule"] =
      static_cast<double>(engine.ApproxStateBytes(/*include_windows=*/true)) / pairs;
  state.counters["bytes_per_sensor_rule_no_windows"] =
      static_cast<double>(engine.ApproxStateBytes(/*include_windows=*/false)) / pairs;
  state.counters["stored_fraction"] =
      static_cast<double>(stored) / static_cast<double>(state.iterations());
}

void BM_Rules_10kSensors_5Rules_Mixed(benchmark::State& state) { Run(state, MixedPolicy()); }
void BM_Rules_10kSensors_5Rules_Compact(benchmark::State& state) { Run(state, CompactPolicy()); }

// Ten minutes of warm-up are 600 readings per sensor: every anomaly rule has its baseline
// and decides (from the 132nd reading); its hour-of-day baselines are not yet used (two days).
void BM_Rules_10kSensors_Threshold(benchmark::State& state) { Run(state, kThresholdPolicy, 1); }
void BM_Rules_10kSensors_Anomaly(benchmark::State& state) { Run(state, kAnomalyPolicy, 1); }

// 1,000 sensors, each reporting state.range(0) times a second, through a 1-minute rate and a
// 5-minute rolling zscore, after ten minutes of data. window_bytes_per_sensor is what the
// engine accounts for the two rules' window buffers (ApproxStateBytes with windows minus
// without), state_bytes_per_sensor everything it accounts for.
void BM_Rules_1kSensors_Windows(benchmark::State& state) {
  constexpr int kWindowSensors = 1'000;
  const int64_t per_s = state.range(0);
  Engine engine(Parse(kWindowsPolicy));
  Feed feed(kWindowSensors, 1000 / per_s);
  std::vector<AlertEvent> events;
  for (int64_t i = 0; i < int64_t{kWindowSensors} * per_s * kWarmupRounds; ++i) {
    engine.Process(feed.Next(), events);
    events.clear();
  }
  for (auto _ : state) {
    engine.Process(feed.Next(), events);
    events.clear();
  }
  state.SetItemsProcessed(state.iterations());
  const size_t with = engine.ApproxStateBytes(/*include_windows=*/true);
  const size_t without = engine.ApproxStateBytes(/*include_windows=*/false);
  state.counters["window_bytes_per_sensor"] = static_cast<double>(with - without) / kWindowSensors;
  state.counters["state_bytes_per_sensor"] = static_cast<double>(with) / kWindowSensors;
}

BENCHMARK(BM_Rules_10kSensors_5Rules_Mixed)->MinTime(2.0);
BENCHMARK(BM_Rules_10kSensors_5Rules_Compact)->MinTime(2.0);
BENCHMARK(BM_Rules_1kSensors_Windows)->Arg(1)->Arg(10)->MinTime(2.0);
BENCHMARK(BM_Rules_10kSensors_Threshold)->MinTime(2.0);
BENCHMARK(BM_Rules_10kSensors_Anomaly)->MinTime(2.0);

}  // namespace
