// Deterministic sensor model for sensor-sim: per-sensor random walks, the anomaly
// schedule and payload encoding. Nothing here touches the network or a clock; the
// caller supplies the wall-clock start of the run so that timestamps can be derived
// from the logical schedule.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sensor_sim {

enum class Format { kPlain, kJson, kZ2m, kMixed };
enum class AnomalyKind { kSpike, kDrift, kStuck, kSilence };

std::optional<Format> ParseFormat(std::string_view text);
std::string_view FormatName(Format format);
std::string_view AnomalyName(AnomalyKind kind);

// Parses "60s", "1.5m", "250ms", "2h" or a bare number of seconds into milliseconds.
std::optional<std::int64_t> ParseDurationMs(std::string_view text);

// Small, portable PRNG (xoshiro256**, seeded through splitmix64) so that a seed gives
// the same numbers with any standard library.
class Rng {
 public:
  explicit Rng(std::uint64_t seed);
  std::uint64_t Next();
  // Uniform in [0, 1).
  double Uniform();
  // Uniform in [lo, hi).
  double Uniform(double lo, double hi);
  // Uniform integer in [0, n); n must be > 0.
  std::uint64_t Below(std::uint64_t n);
  // Standard normal (Box-Muller, no cached second value).
  double Normal();

 private:
  std::uint64_t s_[4];
};

struct SimConfig {
  std::string prefix = "sim";
  int sensors = 20;
  double rate = 1.0;  // readings per second per sensor
  std::int64_t duration_ms = 60'000;
  std::uint64_t seed = 1;
  Format format = Format::kPlain;
  int anomalies = 5;
};

// One scheduled anomaly. Times are offsets from the start of the run in ms; the
// affected readings are those with start_ms <= offset < end_ms.
struct Anomaly {
  int sensor = 0;
  AnomalyKind kind = AnomalyKind::kSpike;
  std::int64_t start_ms = 0;
  std::int64_t end_ms = 0;
  std::int64_t first_reading = 0;     // index of the first affected reading of the sensor
  std::optional<double> peak;         // published value at the top; none for silence
  std::vector<double> spike_offsets;  // spike only: added to the baseline per reading
  double stuck_value = 0.0;           // stuck only
};

struct SensorInfo {
  Format format = Format::kPlain;
  std::string topic;      // where it publishes
  std::string sensor_id;  // the id an agent derives (topic, or topic/temperature for z2m)
  double baseline = 0.0;
};

struct Message {
  std::string topic;
  std::string payload;
};

class Simulation {
 public:
  explicit Simulation(const SimConfig& config);

  const SimConfig& config() const { return config_; }
  int sensor_count() const { return static_cast<int>(sensors_.size()); }
  const SensorInfo& sensor(int index) const { return sensors_[static_cast<size_t>(index)].info; }
  const std::vector<Anomaly>& anomalies() const { return anomalies_; }
  // How many anomalies were requested but could not be placed without overlap.
  int unplaced_anomalies() const { return unplaced_; }

  // The global event sequence: event g is reading g / N of sensor g % N and is due at
  // g / (N * rate) seconds after the start. This spreads the sensors evenly.
  std::int64_t EventDueNs(std::int64_t event) const;
  // Offset in ms of reading k of a sensor (what ts_ms is relative to the start).
  std::int64_t ReadingOffsetMs(int sensor, std::int64_t reading) const;
  // Number of events that fall inside the configured duration.
  std::int64_t EventCount() const { return event_count_; }

  // Advances the sensor of event `event` (events must be taken in order) and returns
  // the message to publish, or nothing while the sensor is silenced.
  std::optional<Message> Next(std::int64_t event, std::int64_t wall_start_ms);

  // The truth line (JSON, no newline) of an anomaly, with absolute timestamps.
  std::string TruthLine(const Anomaly& anomaly, std::int64_t wall_start_ms) const;

 private:
  struct SensorState {
    SensorInfo info;
    Rng rng{0};
    double value = 0.0;  // random-walk state
    double humidity_baseline = 0.0;
    double humidity = 0.0;
    std::vector<size_t> anomaly_indices;  // into anomalies_, sorted by start
    std::int64_t next_reading = 0;
  };

  void Schedule();
  bool TryPlace(Rng& rng, Anomaly& anomaly, std::int64_t length_ms);
  const Anomaly* ActiveAnomaly(const SensorState& state, std::int64_t offset_ms) const;

  SimConfig config_;
  std::vector<SensorState> sensors_;
  std::vector<Anomaly> anomalies_;
  std::int64_t event_count_ = 0;
  int unplaced_ = 0;
};

}  // namespace sensor_sim
